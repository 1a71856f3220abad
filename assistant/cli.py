"""The ``assistant`` command: up, talk, run, status, say, tail, devices, enroll, avatar build, forget, install.

Exit codes: 0 success, 1 runtime failure (bus unreachable, service missing), 2 bad usage or config.

The CLI talks to running services over the bus; what needs a service's or a builder's own code
(enrol from photos, build an avatar, forget a person) goes through their entry functions
(``assistant.entrypoints``), never by importing their internals.
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

    # The operator's key pair: the broker lets it send commands and speech, and stamps "operator".
    client = BusClient(config.bus, f"cli-{os.getpid()}", topics, identity="operator")
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
    """Publish ``voice.say`` and wait until the voice starts playing it: exit 1 with one line when it
    cannot (no speaker, no voice service, an engine error), so a script knows nothing was heard."""
    import uuid

    from assistant.messages import Done, Heartbeat, Playback, Say, SystemState, VoiceError

    say_id = f"cli-{uuid.uuid4().hex[:12]}"
    client = _client(config, [Done.TYPE, VoiceError.TYPE, Playback.TYPE, Heartbeat.TYPE, SystemState.TYPE])
    try:
        client.publish(Say(text=" ".join(args.text), lang=args.lang, interrupt=args.interrupt, say_id=say_id), turn=say_id)
        if args.no_wait:
            time.sleep(0.1)  # let the message leave before the socket closes
            return 0
        return _await_speech(client, say_id, args.wait)
    finally:
        client.close()


def _await_speech(client, say_id: str, wait_s: float) -> int:
    from assistant.messages import Done, Heartbeat, Playback, SystemState, VoiceError

    deadline = time.monotonic() + wait_s
    voice_seen = False
    ours: set[str] = set()  # utterance ids of this request
    while time.monotonic() < deadline:
        rx = client.recv(timeout_ms=100)
        if rx is None:
            continue
        msg = rx.msg
        if isinstance(msg, VoiceError) and msg.say_id == say_id:
            print(f"assistant: the voice cannot say it: {msg.error}", file=sys.stderr)
            return 1
        if isinstance(msg, Done) and msg.say_id == say_id:
            if msg.status == "failed":
                print(f"assistant: the voice could not play it: {msg.detail or 'failed'}", file=sys.stderr)
                return 1
            ours.add(msg.utterance_id)
            if msg.last:
                return 0
        elif isinstance(msg, Playback) and rx.header.turn == say_id:
            return 0  # it is being heard now
        elif isinstance(msg, (Heartbeat, SystemState)) and msg.service == "voice":
            voice_seen = True
            if msg.state == "degraded" or (isinstance(msg, Heartbeat) and msg.counters.get("speaker_available") == 0):
                print("assistant: the voice cannot play: no speaker (check voice.speaker, `assistant devices`)", file=sys.stderr)
                return 1
    if not voice_seen:
        print(f"assistant: no voice service answered within {wait_s:.0f} s (is it running? `assistant status`)", file=sys.stderr)
    else:
        print(f"assistant: nothing was played within {wait_s:.0f} s", file=sys.stderr)
    return 1


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
    from assistant.entrypoints import entry

    added, problems = entry("enroll")(config, args.name, args.photos, args.gallery)
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)
    if not added:
        print(f"assistant: no face enrolled for {args.name}", file=sys.stderr)
        return 1
    print(f"enrolled {args.name}: {added} face(s) in {args.gallery or config.camera.gallery_dir}")
    return 0


def cmd_avatar_build(config: Config, args: argparse.Namespace) -> int:
    """Build a neural avatar from talking video(s): the avatar builder's entry function (``models.neural.commands``)."""
    from assistant.entrypoints import entry

    return entry("avatar-build")(config, args)


def cmd_devices(config: Config, args: argparse.Namespace) -> int:
    from assistant.devices import report

    text, _ = report()
    print(text)
    return 0


#: What ``assistant talk`` changes: the face and voice go to the page, the page's microphone and
#: text box are the hearing, and speech is answered without a visitor in front of the camera.
TALK_OVERRIDES = {"ASSISTANT_RENDERER__SCREEN": '["web"]', "ASSISTANT_HEARING__MIC_DEVICE": "web",
                  "ASSISTANT_BRAIN__ALWAYS_LISTEN": "true", "ASSISTANT_VOICE__SPEAKER__KIND": "wav"}


def cmd_talk(config: Config, args: argparse.Namespace) -> int:
    """``assistant up`` with the kiosk page as the face, the voice and the microphone."""
    from assistant.supervisor import Supervisor

    import shutil
    import tempfile

    overrides = dict(TALK_OVERRIDES)
    scratch = tempfile.mkdtemp(prefix="assistant-talk-")
    if args.speaker:
        overrides.pop("ASSISTANT_VOICE__SPEAKER__KIND")  # the configured sound card plays the voice too
    else:
        # The WAV twin records every sample (about 350 MB an hour): kept only while the session runs.
        overrides["ASSISTANT_VOICE__SPEAKER__WAV_PATH"] = os.path.join(scratch, "voice.wav")
    for key, value in overrides.items():
        os.environ[key] = value  # the children read the same config with these on top
    try:
        try:
            config = load(args.config)
        except ConfigError as exc:
            print(f"assistant: config error: {exc}", file=sys.stderr)
            return 2
        r = config.renderer
        print(f"assistant: talk to it at http://{r.web_host}:{r.web_port}/ (press Talk, or type); "
              f"status page http://{config.ops.host}:{config.ops.port}/; Ctrl-C stops", flush=True)
        return Supervisor(config, args.config).run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cmd_forget(config: Config, args: argparse.Namespace) -> int:
    """Remove a person's face, mail and cached speech (see ``assistant.forget``)."""
    from assistant.forget import forget, tell_the_camera

    removed = forget(config, args.name)
    told = tell_the_camera(config, args.name)
    for line in removed:
        print(f"removed {line}")
    if not removed:
        print(f"nothing stored for {args.name}")
    if told:
        print("told the running camera to forget the face")
    return 0


def cmd_install(config: Config, args: argparse.Namespace) -> int:
    from assistant.install import run

    return run(args, list(config.supervisor.services))


_CONFIG_HELP = "TOML config file (default: $ASSISTANT_CONFIG, else /etc/assistant/assistant.toml when present, else built-in defaults)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Embodied kiosk assistant.")
    parser.add_argument("--config", help=_CONFIG_HELP)
    # --config is also accepted after the subcommand (SUPPRESS: absent there, the one before stays).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **kw: _add(*a, parents=[common], **kw)  # type: ignore[method-assign]
    p = sub.add_parser("up", help="run the bus and every enabled service; restart crashes; Ctrl-C stops all")
    p.set_defaults(fn=cmd_up)
    p = sub.add_parser("run", help="run one service (bus, voice, renderer, ...) in the foreground")
    p.add_argument("name")
    p.add_argument("service_args", nargs=argparse.REMAINDER, help="arguments for the service")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("talk", help="run the kiosk with its web page: face, voice, microphone and text box in your browser")
    p.add_argument("--speaker", action="store_true", help="also play the voice on the configured speaker (voice.speaker)")
    p.set_defaults(fn=cmd_talk)
    p = sub.add_parser("devices", help="list cameras, microphones and speakers with the config line that selects each")
    p.set_defaults(fn=cmd_devices)
    p = sub.add_parser("status", help="table of services from their heartbeats; exit 1 if one is missing")
    p.add_argument("--wait", type=float, default=2.5, help="seconds to listen for heartbeats")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("say", help="make the assistant say TEXT")
    p.add_argument("text", nargs="+")
    p.add_argument("--lang", default="")
    p.add_argument("--interrupt", action="store_true", help="stop current speech first")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait for the voice to start speaking")
    p.add_argument("--no-wait", action="store_true", help="publish and return at once (exit 0 even if nothing plays)")
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
    p = sub.add_parser("avatar", help="neural avatars for the renderer")
    avatar = p.add_subparsers(dest="avatar_command", required=True)
    p = avatar.add_parser("build", parents=[common], help="turn talking VIDEO(s) of one person into an avatar (resumable: rerun to continue)")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--name", required=True, help="avatar name for renderer.neural.avatar")
    p.add_argument("--out", default="", help="avatars folder (default: renderer.neural.avatars_dir)")
    p.add_argument("--size", type=int, default=0, help="mouth crop pixels (default 256 on a GPU, 128 on the CPU)")
    p.add_argument("--mode", choices=["temporal", "pix2pix"], default="temporal")
    p.add_argument("--steps", type=int, default=0, help="generator training steps (default 6000 GPU; CPU: what --minutes allows)")
    p.add_argument("--minutes", type=float, default=60.0, help="CPU: time budget of the whole build, sets the steps (default 60)")
    p.add_argument("--batch", type=int, default=0, help="pairs per training step (default 8 GPU, 4 CPU)")
    p.add_argument("--ngf", type=int, default=0, help="generator width (default 32 GPU, 16 CPU)")
    p.add_argument("--heldout", type=float, default=0.2, help="fraction of each video held out for the model card (one block)")
    p.add_argument("--heldout-at", type=float, default=0.8, help="where the held-out block starts in each video (fraction; default: the last 20%%)")
    p.add_argument("--temporal-l1", type=float, default=100.0, help="frame-change L1 weight (0: temporal discriminator only)")
    p.add_argument("--feature-matching", type=float, default=10.0, help="discriminator feature-matching loss weight (0: off)")
    p.add_argument("--mouth-l1", type=float, default=50.0, help="extra L1 inside the lips (0: off)")
    p.add_argument("--edge-l1", type=float, default=50.0, help="L1 of image gradients inside the lips, for sharp teeth (0: off)")
    p.add_argument("--loop-seconds", type=float, nargs=2, default=(4.0, 10.0), metavar=("MIN", "MAX"),
                   help="shortest and longest base-video loop (default 4 10)")
    p.add_argument("--no-compare", action="store_true", help="skip training plain pix2pix for the comparison")
    p.add_argument("--ablate", action="store_true", help="also train the temporal model without the frame-change L1")
    p.add_argument("--warm-start", type=float, default=0.5,
                   help="fraction of the steps trained as plain pix2pix before the temporal model takes over from it (0: from scratch)")
    p.add_argument("--min-seconds", type=float, default=20.0, help="least total footage")
    p.add_argument("--lipsync-base", default="", help="lip-sync model to fine-tune, .pt or .onnx (default models/lipsync/weights/lipsync.pt, else the shipped lipsync.onnx)")
    p.add_argument("--lipsync-steps", type=int, default=250, help="most lip-sync fine-tune steps (the best on the validation speech is kept)")
    p.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--restart", action="store_true", help="discard an unfinished build of this name")
    p.set_defaults(fn=cmd_avatar_build)
    p = sub.add_parser("forget", help="remove a person's enrolled face, their mail and the cached speech")
    p.add_argument("name", help="the person's name, as enrolled (alice_smith) or spoken (Alice Smith)")
    p.set_defaults(fn=cmd_forget)
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
