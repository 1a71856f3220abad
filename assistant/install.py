"""``assistant install``: the user, folders, config and systemd units of a production kiosk.

Installs into ``/`` (as root), or stages the same tree into a folder with ``--root DIR`` (tests,
image builds). Idempotent: units are rewritten, an existing config, environment file or password
file is never overwritten. ``--verify`` checks the installed units with ``systemd-analyze verify``
and fails on any output (it exits 0 on warnings, which is why CI must not trust its exit code).

The units in ``systemd/`` run ``/opt/assistant/.venv/bin/python`` from ``/opt/assistant``; the
installer points them at the interpreter and code tree actually used (``--python``, ``--app-dir``;
by default the ones running this command).
"""

from __future__ import annotations

import argparse
import grp
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CODE = Path(__file__).resolve().parents[1]
UNITS = CODE / "systemd"
EXAMPLE_CONFIG = CODE / "examples" / "assistant.toml"
SHIPPED_PYTHON = "/opt/assistant/.venv/bin/python"
SHIPPED_APP_DIR = "/opt/assistant"
USER = "assistant"

SYSUSERS = f'u {USER} - "Embodied kiosk assistant" /var/lib/assistant /usr/sbin/nologin\n'

ENVIRONMENT = """\
# Environment of every assistant-*.service: ASSISTANT_<SECTION>__<KEY>=value overrides a key of
# /etc/assistant/assistant.toml (value written as TOML). Secrets do not belong here: the mail
# password is /etc/assistant/email-password, handed over by systemd as a credential.
#ASSISTANT_SERVICE__LOG_LEVEL=debug
"""


class InstallError(RuntimeError):
    """The installation cannot go on; the message says why and what to do."""


@dataclass
class Plan:
    root: Path
    app_dir: Path
    python: Path
    services: list[str]
    create_user: bool = True
    enable: bool = True
    rotate_keys: bool = False
    done: list[str] = field(default_factory=list)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def staged(self) -> bool:
        return self.root != Path("/")


def unit_names(services: list[str]) -> list[str]:
    """Units to enable: the bus, the status page and the configured services that have a unit."""
    names = ["bus", "ops", *[s for s in services if s not in ("bus", "ops")]]
    return [f"assistant-{n}.service" for n in names if (UNITS / f"assistant-{n}.service").exists()]


def render_unit(text: str, plan: Plan) -> str:
    """Point a shipped unit at the interpreter and code tree of this installation."""
    return text.replace(SHIPPED_PYTHON, str(plan.python)).replace(f"WorkingDirectory={SHIPPED_APP_DIR}", f"WorkingDirectory={plan.app_dir}")


def _run(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")
    return out.stdout + out.stderr


def install_units(plan: Plan) -> list[Path]:
    target = plan.path("/etc/systemd/system")
    written = []
    for src in sorted(UNITS.rglob("*")):
        if src.is_dir():
            continue
        dst = target / src.relative_to(UNITS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(render_unit(src.read_text(), plan))
        dst.chmod(0o644)
        written.append(dst)
    plan.done.append(f"units -> {target}")
    return written


def create_user(plan: Plan) -> None:
    plan.path("/etc").mkdir(parents=True, exist_ok=True)  # sysusers writes passwd and group there
    conf = plan.path("/usr/lib/sysusers.d/assistant.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(SYSUSERS)
    if shutil.which("systemd-sysusers"):
        _run(["systemd-sysusers", f"--root={plan.root}"] if plan.staged else ["systemd-sysusers", str(conf)])
    elif not plan.staged:
        try:
            grp.getgrnam(USER)
        except KeyError:
            _run(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/assistant", "--shell", "/usr/sbin/nologin", USER])
    else:
        raise InstallError("systemd-sysusers is missing; install the systemd package to stage a root")
    plan.done.append(f"user {USER}")


def _group_id(plan: Plan) -> int | None:
    """The assistant group's id in the target root, or None when it has none (yet)."""
    group_file = plan.path("/etc/group")
    try:
        for line in group_file.read_text().splitlines():
            parts = line.split(":")
            if parts[0] == USER and len(parts) > 2:
                return int(parts[2])
    except (OSError, ValueError):
        pass
    return None


def _own(path: Path, gid: int | None, mode: int) -> None:
    path.chmod(mode)
    if gid is not None and os.geteuid() == 0:
        os.chown(path, 0, gid)


def install_files(plan: Plan) -> None:
    """/etc/assistant with the config (from the example), the environment file and the password file."""
    gid = _group_id(plan)
    etc = plan.path("/etc/assistant")
    etc.mkdir(parents=True, exist_ok=True)
    _own(etc, gid, 0o750)
    config = etc / "assistant.toml"
    if not config.exists():
        # The production bus: sockets in systemd's runtime directory, keys from install_keys.
        text = EXAMPLE_CONFIG.read_text().replace('runtime_dir = ""', 'runtime_dir = "/run/assistant"', 1)
        config.write_text(text.replace('keys_dir = ""', f'keys_dir = "{KEYS_DIR}"', 1))
        _own(config, gid, 0o640)
        plan.done.append(f"config {config} (from the example)")
    env = etc / "environment"
    if not env.exists():
        env.write_text(ENVIRONMENT)
        _own(env, gid, 0o640)
    password = etc / "email-password"
    if not password.exists():
        # Empty until an operator writes the password; systemd reads it as root (LoadCredential),
        # so only root may read it.
        password.touch()
        _own(password, None, 0o600)
    plan.done.append(f"folder {etc}")


KEYS_DIR = "/etc/assistant/keys"
#: Identities that get a CURVE key pair: each service's unit, the supervisor and the operator CLI.
KEY_IDENTITIES = ("bus", "camera", "hearing", "voice", "renderer", "email", "brain", "ops", "supervisor", "operator")


def install_keys(plan: Plan, *, rotate: bool = False) -> None:
    """A CURVE key pair per identity in /etc/assistant/keys (kept; ``rotate`` makes new ones).

    ``public/`` is readable by everyone (the broker reads it); ``private/`` is root's alone: each
    unit gets its own pair from systemd (``LoadCredential=bus-NAME.key_secret``), so no service can
    read another's; the operator's pair is root's too (``sudo assistant status``).
    """
    from assistant.bus.keys import KeyStore

    store = KeyStore(plan.path(KEYS_DIR), auto_create=False)
    made = []
    for name in KEY_IDENTITIES:
        if rotate or not (store.private_dir / f"{name}.key_secret").exists():
            store.make(name, replace=True)
            made.append(name)
    _own(store.directory, None, 0o755)
    _own(store.public_dir, None, 0o755)
    _own(store.private_dir, None, 0o700)
    (store.directory / ".lock").unlink(missing_ok=True)
    if made:
        plan.done.append(f"bus keys {', '.join(made)} -> {store.directory}" + (" (rotated: restart assistant.target)" if rotate else ""))


def enable_units(plan: Plan) -> None:
    units = ["assistant.target", *unit_names(plan.services)]
    argv = ["systemctl", *([f"--root={plan.root}"] if plan.staged else []), "enable", *units]
    _run(argv)
    if not plan.staged and Path("/run/systemd/system").is_dir():
        _run(["systemctl", "daemon-reload"])
    plan.done.append("enabled " + " ".join(units))


def verify_units(plan: Plan) -> str:
    """``systemd-analyze verify`` on the installed units; returns its output (empty when clean)."""
    if shutil.which("systemd-analyze") is None:
        raise InstallError("systemd-analyze is missing; install the systemd package to verify units")
    units = sorted(str(p) for p in plan.path("/etc/systemd/system").glob("assistant*.service")) + [str(plan.path("/etc/systemd/system/assistant.target"))]
    out = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip() or ("" if out.returncode == 0 else f"systemd-analyze exited with {out.returncode}")


#: Highest ``systemd-analyze security`` exposure a unit may have (0 safe .. 10 exposed).
MAX_EXPOSURE = 2.5


def unit_exposure(plan: Plan) -> dict[str, float]:
    """``systemd-analyze security --offline`` of every installed unit: name -> overall exposure."""
    import re

    folder = plan.path("/etc/systemd/system")
    out: dict[str, float] = {}
    for unit in sorted(p.name for p in folder.glob("assistant*.service")):
        res = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={plan.root}", "--no-pager", unit],
                             capture_output=True, text=True, cwd=folder)
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", res.stdout + res.stderr)
        out[unit] = float(found.group(1)) if found else float("inf")
    return out


def install(plan: Plan) -> None:
    if not plan.staged and os.geteuid() != 0:
        raise InstallError("installing into / needs root; run it with sudo, or stage into a folder with --root DIR")
    if not plan.python.exists():
        raise InstallError(f"python {plan.python} does not exist; pass --python with the venv's interpreter")
    if not (plan.app_dir / "services").is_dir():
        raise InstallError(f"{plan.app_dir} holds no services/ folder; pass --app-dir with the code tree")
    if plan.create_user:
        create_user(plan)
    install_units(plan)
    install_files(plan)
    install_keys(plan, rotate=plan.rotate_keys)
    if plan.enable:
        enable_units(plan)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="/", help="install below this folder instead of / (staging, tests)")
    parser.add_argument("--app-dir", default=str(CODE), help="code tree the units run from (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="interpreter the units run (default: this one)")
    parser.add_argument("--services", default="", help="comma-separated services to enable (default: [supervisor].services of the config)")
    parser.add_argument("--no-user", action="store_true", help="do not create the assistant user")
    parser.add_argument("--no-enable", action="store_true", help="install the units without enabling them")
    parser.add_argument("--rotate-keys", action="store_true", help="make new bus key pairs for every identity (then restart assistant.target)")
    parser.add_argument("--verify", action="store_true", help="run systemd-analyze verify on the units; exit 1 on any output")


def run(args: argparse.Namespace, default_services: list[str]) -> int:
    services = [s.strip() for s in args.services.split(",") if s.strip()] if args.services else default_services
    plan = Plan(Path(args.root).resolve(), Path(args.app_dir).resolve(), Path(args.python).absolute(), services,
                create_user=not args.no_user, enable=not args.no_enable, rotate_keys=args.rotate_keys)
    try:
        install(plan)
    except (InstallError, OSError) as exc:
        print(f"assistant install: {exc}", file=sys.stderr)
        return 1
    for line in plan.done:
        print(f"installed: {line}")
    if args.verify:
        out = verify_units(plan)
        if out:
            print(f"assistant install: systemd-analyze verify is not clean:\n{out}", file=sys.stderr)
            return 1
        print("verified: systemd-analyze verify found nothing to report")
        exposure = unit_exposure(plan)
        too_high = {u: e for u, e in exposure.items() if e > MAX_EXPOSURE}
        print("exposure: " + ", ".join(f"{u} {e:.1f}" for u, e in exposure.items()))
        if too_high:
            print(f"assistant install: systemd-analyze security exposure above {MAX_EXPOSURE}: "
                  + ", ".join(f"{u} {e}" for u, e in too_high.items()), file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m assistant.install``: the same as ``assistant install``."""
    from assistant.config import load

    parser = argparse.ArgumentParser(prog="assistant install", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv), list(load(EXAMPLE_CONFIG, {}).supervisor.services))


if __name__ == "__main__":
    raise SystemExit(main())
