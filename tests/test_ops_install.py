"""`assistant install --root`: user, folders, config, units enabled; every unit verifies clean."""

import configparser
import shutil
import subprocess
import sys

import pytest

from assistant.install import UNITS, Plan, install, verify_units

from .procs import REPO

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("systemctl") is None,
                                   reason="systemd tools missing (apt-get install systemd)")


def _unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path)
    return parser


def test_every_shipped_unit_runs_a_service_that_exists_with_the_hardening():
    from assistant.supervisor import SERVICES

    common = _unit(UNITS / "assistant-.service.d" / "10-common.conf")["Service"]
    for key, value in {"Type": "notify", "Restart": "always", "User": "assistant", "NoNewPrivileges": "yes",
                       "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "RuntimeDirectory": "assistant"}.items():
        assert common[key] == value, key
    assert 0 < float(common["WatchdogSec"]) <= 30
    units = sorted(UNITS.glob("assistant-*.service"))
    assert {u.stem.removeprefix("assistant-") for u in units} == set(SERVICES) - {"echo"}
    for path in units:
        service = _unit(path)["Service"]
        name = path.stem.removeprefix("assistant-")
        assert service["ExecStart"].split()[1:4] == ["-m", f"services.{name}", "--config"], path
        devices = service.get("DeviceAllow", "")
        # Devices: video for the camera, sound for voice and hearing, nothing for the rest.
        if name == "camera":
            assert devices == "char-video4linux rw" and service["SupplementaryGroups"] == "video"
        elif name in ("voice", "hearing"):
            assert devices == "char-alsa rw" and service["SupplementaryGroups"] == "audio"
        else:
            assert not devices and service["PrivateDevices"] == "yes", path
        if name != "bus":
            unit = _unit(path)["Unit"]
            assert unit["After"] == "assistant-bus.service" and "Requires" not in unit
    assert "LoadCredential" in _unit(UNITS / "assistant-email.service")["Service"]


@needs_systemd
def test_staged_install_creates_user_config_units_and_verifies_clean(tmp_path):
    root = tmp_path / "root"
    out = subprocess.run([sys.executable, "-m", "assistant", "install", "--root", str(root), "--services", "voice,camera", "--verify"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout
    assert any(line.startswith("assistant:") for line in (root / "etc" / "passwd").read_text().splitlines())
    # The example, pointed at the production bus: systemd's runtime directory and the installed keys.
    example = (REPO / "examples/assistant.toml").read_text()
    expected = example.replace('runtime_dir = ""', 'runtime_dir = "/run/assistant"', 1).replace('keys_dir = ""', 'keys_dir = "/etc/assistant/keys"', 1)
    assert (root / "etc/assistant/assistant.toml").read_text() == expected != example
    assert (root / "etc/assistant/email-password").stat().st_mode & 0o777 == 0o600
    wants = sorted(p.name for p in (root / "etc/systemd/system/assistant.target.wants").iterdir())
    assert wants == ["assistant-bus.service", "assistant-camera.service", "assistant-ops.service", "assistant-voice.service"]
    assert (root / "etc/systemd/system/multi-user.target.wants/assistant.target").is_symlink()
    exec_start = _unit(root / "etc/systemd/system/assistant-voice.service")["Service"]["ExecStart"]
    assert exec_start.split()[0] == sys.executable


@needs_systemd
def test_a_second_install_keeps_the_operators_config(tmp_path):
    plan = Plan(tmp_path, REPO, __import__("pathlib").Path(sys.executable), ["voice"])
    install(plan)
    config = tmp_path / "etc/assistant/assistant.toml"
    config.write_text("[brain]\nname = 'Bob'\n")
    install(Plan(tmp_path, REPO, __import__("pathlib").Path(sys.executable), ["voice"]))
    assert config.read_text() == "[brain]\nname = 'Bob'\n"


@needs_systemd
def test_verify_reports_a_broken_unit(tmp_path):
    plan = Plan(tmp_path, REPO, __import__("pathlib").Path(sys.executable), ["voice"], create_user=False, enable=False)
    install(plan)
    assert verify_units(plan) == ""
    unit = tmp_path / "etc/systemd/system/assistant-voice.service"
    unit.write_text(unit.read_text().replace("DevicePolicy=closed", "DevicePolicy=closedd"))
    assert "device policy" in verify_units(plan)


def test_installing_into_slash_without_root_or_with_a_missing_python_says_what_to_do(tmp_path):
    out = subprocess.run([sys.executable, "-m", "assistant", "install", "--root", str(tmp_path), "--python", "/nonexistent/python"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "--python" in out.stderr and "Traceback" not in out.stderr
