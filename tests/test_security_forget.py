"""``assistant forget NAME``: the face, the mail and the cached speech go; other people's stay."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from services.brain.mailstore import MailStore, StoredMail

from .procs import REPO


def test_forget_removes_face_mail_and_cached_speech(tmp_path):
    faces, cache, store = tmp_path / "faces", tmp_path / "voice-cache", tmp_path / "brain.sqlite"
    faces.mkdir()
    for who in ("alice_smith", "bob"):
        np.savez(faces / f"{who}.npz", embeddings=np.zeros((2, 128), np.float32))
    (cache / "ab").mkdir(parents=True)
    (cache / "ab" / "entry.bin").write_bytes(b"\0" * 100)
    db = MailStore(store)
    for i, who in enumerate(("alice smith", "alice smith", "bob")):
        db.store(StoredMail(f"<m{i}>", who, "carol@example.com", "Carol", "lunch", "Noon at the cafe?", time.time()))
    db.close()
    config = tmp_path / "assistant.toml"
    config.write_text(f'[camera]\ngallery_dir = "{faces}"\n[voice.cache]\ndirectory = "{cache}"\n[brain]\nstore_path = "{store}"\n'
                      f'[bus]\nruntime_dir = "{tmp_path / "run"}"\n')
    out = subprocess.run([sys.executable, "-m", "assistant", "--config", str(config), "forget", "Alice Smith"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "alice_smith.npz" in out.stdout and "2 mail(s)" in out.stdout and "1 cached audio" in out.stdout
    assert sorted(p.name for p in faces.iterdir()) == ["bob.npz"]
    assert not list(cache.rglob("*.bin"))
    db = MailStore(store)
    assert [m.recipient for m in db.pending_for(["alice smith", "bob"])] == ["bob"]
    db.close()
    again = subprocess.run([sys.executable, "-m", "assistant", "--config", str(config), "forget", "alice_smith"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing stored for alice_smith" in again.stdout


def test_retention_deletes_old_mail():
    clock = [1_000_000.0]
    db = MailStore(":memory:", clock=lambda: clock[0])
    db.store(StoredMail("<old>", "bob", "c@x", "C", "s", "old body", clock[0] - 8 * 86400))
    db.store(StoredMail("<new>", "bob", "c@x", "C", "s", "new body", clock[0] - 3600))
    assert db.purge(7 * 86400) == 1
    assert [m.mail_id for m in db.pending_for(["bob"])] == ["<new>"]
