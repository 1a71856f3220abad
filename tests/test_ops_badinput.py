"""Bad input sweep over real service processes: hostile settings, broken media and stores.

Each case starts one service (all at once, on one broker) with one bad thing in its way. A
service either keeps running and says what is wrong in one warning or error line, or, when it
cannot run as configured, says so in one line and exits with 2 (not restarted in a loop). Never a
traceback, never a dozen lines of library noise. Fuzzed bus frames and hostile mail are swept in
``test_ops_faults`` and ``test_email_*``; hostile numbers in the config in ``test_config``.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.slow


@dataclass
class Case:
    id: str
    service: str
    env: dict[str, str]
    needle: str  # the one line mentions this
    exits: int | None = None  # None: keeps running


# ``{tmp}``: the sweep's folder, with the broken files ``_break`` writes; ``{busy}``: a port someone holds.
CASES = [
    Case("camera-absent-device", "camera", {"ASSISTANT_CAMERA__DEVICE": "/dev/video99"}, "/dev/video99"),
    Case("camera-no-sim-faces", "camera", {"ASSISTANT_CAMERA__SIM_FACES_DIR": "{tmp}/nope"}, "camera.sim_faces_dir", 2),
    Case("camera-corrupt-gallery", "camera", {"ASSISTANT_CAMERA__GALLERY_DIR": "{tmp}/gallery"}, "alice.npz"),
    Case("hearing-garbage-wav", "hearing", {"ASSISTANT_HEARING__MIC_FILE": "{tmp}/garbage.wav"}, "garbage.wav"),
    Case("hearing-truncated-wav", "hearing", {"ASSISTANT_HEARING__MIC_FILE": "{tmp}/truncated.wav"}, "truncated.wav"),
    Case("hearing-absent-mic", "hearing", {"ASSISTANT_HEARING__MIC_DEVICE": "no such mic"}, "no such mic"),
    Case("voice-absent-speaker", "voice", {"ASSISTANT_VOICE__SPEAKER__KIND": "pyaudio",
                                           "ASSISTANT_VOICE__SPEAKER__DEVICE": "no such speaker"}, "no such speaker"),
    Case("voice-unwritable-twin", "voice", {"ASSISTANT_VOICE__SPEAKER__WAV_PATH": "/proc/nope/speaker.wav"}, "voice.speaker.wav_path", 2),
    Case("voice-unwritable-cache", "voice", {"ASSISTANT_VOICE__CACHE__DIRECTORY": "/proc/nope"}, "voice.cache.directory"),
    Case("renderer-missing-avatar", "renderer", {"ASSISTANT_RENDERER__NEURAL__AVATAR": "no-such-avatar"}, "no-such-avatar", 2),
    Case("brain-unwritable-store", "brain", {"ASSISTANT_BRAIN__STORE_PATH": "/proc/nope/brain.sqlite"}, "brain.store_path", 2),
    # A damaged store is moved aside (one line says where) and the service runs on a fresh one.
    Case("brain-corrupt-store", "brain", {"ASSISTANT_BRAIN__STORE_PATH": "{tmp}/not-a-db.sqlite"}, "not-a-db.sqlite"),
    Case("brain-broken-knowledge", "brain", {"ASSISTANT_BRAIN__KNOWLEDGE_FILE": "{tmp}/knowledge.toml"}, "knowledge.toml"),
    Case("email-corrupt-store", "email", {"ASSISTANT_EMAIL__ENABLED": "true", "ASSISTANT_EMAIL__USERNAME": "kiosk",
                                          "ASSISTANT_EMAIL__PASSWORD_FILE": "{tmp}/knowledge.toml",
                                          "ASSISTANT_EMAIL__STORE_PATH": "{tmp}/not-a-mail-db.sqlite"}, "not-a-mail-db.sqlite"),
    Case("ops-port-taken", "ops", {"ASSISTANT_OPS__PORT": "{busy}"}, "ops.port", 1),
]
CORRUPT_STORE = b"this is no database " * 100


def _break(tmp) -> None:
    """The broken files the cases point at."""
    (tmp / "garbage.wav").write_bytes(os.urandom(3000))
    (tmp / "truncated.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    (tmp / "gallery").mkdir()
    (tmp / "gallery" / "alice.npz").write_bytes(os.urandom(300))
    (tmp / "not-a-db.sqlite").write_bytes(CORRUPT_STORE)
    (tmp / "not-a-mail-db.sqlite").write_bytes(CORRUPT_STORE)
    (tmp / "knowledge.toml").write_text("[[entry]\nquestion = 'unclosed")


class Swept(dict):
    """Each case's (case, alive, exit code, stderr), by id; ``folder`` holds the broken files."""

    def __init__(self, results: dict, folder) -> None:
        super().__init__(results)
        self.folder = folder


@pytest.fixture(scope="module")
def swept(tmp_path_factory, shared_data):
    """Every case started at once on one broker; each one's output once it has had its say."""
    from .procs import Procs

    tmp = tmp_path_factory.mktemp("bad")
    procs = Procs(tmp / "run")
    base = {"ASSISTANT_VOICE__ENGINES": '["espeak-ng"]', "ASSISTANT_VOICE__SPEAKER__KIND": "wav",
            "ASSISTANT_VOICE__CACHE__DIRECTORY": str(tmp / "cache"), "ASSISTANT_RENDERER__SCREEN": '"null"',
            "ASSISTANT_RENDERER__CACHE_DIR": str(tmp / "avatars"), "ASSISTANT_CAMERA__GALLERY_DIR": str(tmp / "faces"),
            "ASSISTANT_BRAIN__STORE_PATH": str(tmp / "brain.sqlite"), "ASSISTANT_EMAIL__STORE_PATH": str(tmp / "mail.sqlite"),
            "ASSISTANT_SHARED_DATA": str(shared_data)}
    busy = socket.socket()  # a port someone else holds
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        procs.broker()
        _break(tmp)
        started = {}
        for i, case in enumerate(CASES):
            env = {**base, "ASSISTANT_VOICE__SPEAKER__WAV_PATH": str(tmp / f"speaker{i}.wav"),
                   **{k: v.format(tmp=tmp, busy=busy.getsockname()[1]) for k, v in case.env.items()}}
            started[case.id] = (case, procs.start(f"services.{case.service}", env=env, start_new_session=True))
        # Generous: fifteen services load their models at once on a small machine.
        time.sleep(12)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(p.poll() is None and c.exits is not None for c, p in started.values()):
            time.sleep(0.2)
        out = {}
        for case, proc in started.values():
            alive = proc.poll() is None
            if alive:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            out[case.id] = (case, alive, proc.returncode, err)
        yield Swept(out, tmp)
    finally:
        procs.cleanup()
        busy.close()


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_bad_input_gives_one_clear_line_and_no_death(swept, case_id):
    case, alive, code, err = swept[case_id]
    lines = err.splitlines()
    problems = [line for line in lines if line.startswith(("WARNING", "ERROR", "CRITICAL"))]
    about = [line for line in problems if case.needle in line]
    assert "Traceback" not in err, err[-3000:]
    assert not [line for line in lines if line.startswith(("ALSA lib", "jack", "Cannot connect to server"))], "library noise:\n" + err[-2000:]
    if case.exits is None:
        assert alive and code == 0, f"{case.service} died ({code}):\n{err[-3000:]}"
    else:
        assert not alive and code == case.exits, f"{case.service}: alive={alive} exit {code}, expected {case.exits}:\n{err[-3000:]}"
    # One line says what is wrong (the service's own "cannot start" line may carry the same reason).
    assert 1 <= len(about) <= (2 if case.exits else 1), f"lines about {case.needle!r}: {about}\n{err[-3000:]}"


@pytest.mark.parametrize("name", ["not-a-db.sqlite", "not-a-mail-db.sqlite"])
def test_a_damaged_store_is_kept_aside_untouched(swept, name):
    """A damaged store is moved aside exactly as it was (it may hold unread mail), and a fresh one works."""
    (aside,) = swept.folder.glob(name + ".damaged-*")
    assert aside.read_bytes() == CORRUPT_STORE
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(aside).execute("select 1 from sqlite_master").fetchall()
    assert sqlite3.connect(swept.folder / name).execute("PRAGMA quick_check").fetchone() == ("ok",)
