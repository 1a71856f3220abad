"""The ``assistant`` command: up, run, status, say, tail, enroll, install.

Exit codes: 0 success, 1 runtime failure (bus unreachable, service missing), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from assistant.config import Config, ConfigError, load
from assistant.service import setup_logging

log = logging.getLogger("assistant")


def _client(config: Config, topics=()):
    from assistant.bus import BusClient

    client = BusClient(config.bus, f"cli-{os.getpid()}", topics)
    client.wait_live()
    return client


def cmd_up(config: Config, args: argparse.Namespace) -> int:
    from assistant.supervisor import Supervisor

    return Supervisor(config, args.config).run()


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from assistant.supervisor import run_service

    argv = (["--config", args.config] if args.config else []) + list(args.service_args)
    return run_service(args.name, argv)


def _fmt_age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from assistant.messages import Heartbeat, SystemState

    client = _client(config, [Heartbeat.TYPE, SystemState.TYPE])
    seen: dict[str, tuple[Heartbeat, int]] = {}
    states: dict[str, str] = {}
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        rx = client.recv(timeout_ms=100)
        if rx is None:
            continue
        if isinstance(rx.msg, Heartbeat):
            seen[rx.msg.service] = (rx.msg, time.monotonic_ns())
        elif isinstance(rx.msg, SystemState):
            states[rx.msg.service] = rx.msg.state
    client.close()
    expected = ["bus", *config.supervisor.services]
    now = time.monotonic_ns()
    rows = [("SERVICE", "STATE", "PID", "UPTIME", "LAST SEEN", "COUNTERS")]
    for name in dict.fromkeys([*expected, *sorted(seen)]):
        if name in seen:
            hb, at = seen[name]
            counters = " ".join(f"{k}={v:g}" for k, v in sorted(hb.counters.items()))
            rows.append((name, states.get(name, hb.state), str(hb.pid), _fmt_age((now - hb.started_ns) / 1e9), f"{(now - at) / 1e9:.1f}s ago", counters))
        else:
            rows.append((name, states.get(name, "missing"), "-", "-", "never", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    missing = [n for n in expected if n not in seen]
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def cmd_say(config: Config, args: argparse.Namespace) -> int:
    from assistant.messages import Say

    client = _client(config)
    client.publish(Say(text=" ".join(args.text), lang=args.lang, interrupt=args.interrupt))
    time.sleep(0.1)  # let the message leave before the socket closes
    client.close()
    return 0


def _describe(rx) -> str:
    import msgspec

    msg = rx.msg
    parts = []
    for name in msg.__struct_fields__:
        value = getattr(msg, name)
        if name in msg.PAYLOADS:
            parts.append(f"{name}=<{len(value)} bytes>")
            continue
        text = msgspec.json.encode(value).decode()
        parts.append(f"{name}={text if len(text) <= 80 else text[:77] + '...'}")
    h = rx.header
    turn = f" turn={h.turn}" if h.turn else ""
    return f"{h.ts_ns / 1e9:.3f} {h.source}#{h.seq} {h.type}{turn} " + " ".join(parts)


def cmd_tail(config: Config, args: argparse.Namespace) -> int:
    client = _client(config, args.topics or [""])
    shown = 0
    try:
        while args.count <= 0 or shown < args.count:
            rx = client.recv(timeout_ms=200)
            if rx is None:
                continue
            if rx.msg.TYPE == "system.probe" and not any(t.startswith("system.probe") for t in args.topics):
                continue
            print(_describe(rx), flush=True)
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def cmd_enroll(config: Config, args: argparse.Namespace) -> int:
    """Enrol NAME from photos (into the gallery on disk) or, with --live, from the running camera."""
    if args.live:
        from assistant.messages import Command, Person

        client = _client(config, [Person.TYPE])
        client.publish(Command(service="camera", command="enroll", args={"name": args.name}))
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            rx = client.recv(timeout_ms=200)
            if rx is not None and rx.msg.event == "recognised" and rx.msg.identity == args.name:
                print(f"enrolled {args.name} from the live camera")
                client.close()
                return 0
        client.close()
        print(f"assistant: {args.name} was not enrolled within {args.wait:.0f} s (is the camera running, and a face in view?)", file=sys.stderr)
        return 1
    if not args.photos:
        raise ValueError("enroll needs PHOTO files, or --live")
    from services.camera.recognition import RecognitionError, enroll_photos

    try:
        added, problems = enroll_photos(args.gallery or config.camera.gallery_dir, args.name, args.photos)
    except RecognitionError as exc:
        raise ValueError(str(exc)) from None
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)
    if not added:
        print(f"assistant: no face enrolled for {args.name}", file=sys.stderr)
        return 1
    print(f"enrolled {args.name}: {added} face(s) in {args.gallery or config.camera.gallery_dir}")
    return 0


def cmd_install(config: Config, args: argparse.Namespace) -> int:
    from assistant.install import run

    return run(args, list(config.supervisor.services))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Embodied kiosk assistant.")
    parser.add_argument("--config", help="TOML config file (default: /etc/assistant/assistant.toml when present, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="run the bus and every enabled service; restart crashes; Ctrl-C stops all")
    p.set_defaults(fn=cmd_up)
    p = sub.add_parser("run", help="run one service (bus, voice, renderer, ...) in the foreground")
    p.add_argument("name")
    p.add_argument("service_args", nargs=argparse.REMAINDER, help="arguments for the service")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("status", help="table of services from their heartbeats; exit 1 if one is missing")
    p.add_argument("--wait", type=float, default=2.5, help="seconds to listen for heartbeats")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("say", help="make the assistant say TEXT")
    p.add_argument("text", nargs="+")
    p.add_argument("--lang", default="")
    p.add_argument("--interrupt", action="store_true", help="stop current speech first")
    p.set_defaults(fn=cmd_say)
    p = sub.add_parser("tail", help="print bus traffic, one line per message")
    p.add_argument("topics", nargs="*", help="topic prefixes (default: everything)")
    p.add_argument("-n", "--count", type=int, default=0, help="stop after N messages")
    p.set_defaults(fn=cmd_tail)
    p = sub.add_parser("enroll", help="teach the camera a person's face from PHOTOs (or --live from the camera)")
    p.add_argument("name")
    p.add_argument("photos", nargs="*", metavar="PHOTO")
    p.add_argument("--live", action="store_true", help="enrol the engaged face in front of the running camera")
    p.add_argument("--gallery", default="", help="gallery folder (default: camera.gallery_dir)")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait with --live")
    p.set_defaults(fn=cmd_enroll)
    p = sub.add_parser("install", help="create the user, folders and config; install and enable the systemd units (--root DIR: stage)")
    from assistant.install import add_arguments

    add_arguments(p)
    p.set_defaults(fn=cmd_install)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        # The service loads and validates the config itself (same rules, same exit code).
        try:
            return cmd_run(None, args)  # type: ignore[arg-type]
        except ValueError as exc:
            print(f"assistant: {exc}", file=sys.stderr)
            return 2
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"assistant: config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.service.log_level)
    try:
        return args.fn(config, args)
    except ValueError as exc:
        print(f"assistant: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback, for operators
        from assistant.bus import BusError

        if isinstance(exc, BusError):
            print(f"assistant: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
