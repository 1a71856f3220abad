"""A full disk at start-up is a fault of the moment: the brain waits ``degraded`` (heartbeats on,
shown on the status page) instead of exiting with the config-error code, and serves once space
is freed. A damaged database is moved aside with one clear line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import uuid

import pytest

from assistant.messages import Heartbeat, Person, SystemState
from assistant.storefile import StoreFault, open_sqlite

from .procs import wait_for
from .test_brain_service import Kiosk

pytest.importorskip("tokenizers", reason="needs the brain extra")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs, filled to the brim (root only)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        filler = mnt / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=1000"], capture_output=True)
        yield mnt, filler
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_at_start_is_degraded_not_a_config_error(procs, tmp_path, small_disk):
    mnt, filler = small_disk
    kiosk = Kiosk(procs, tmp_path)
    kiosk.config.write_text(kiosk.config.read_text().replace(str(tmp_path / "brain.sqlite"), str(mnt / "brain.sqlite")))
    proc = procs.start("services.brain", "--config", str(kiosk.config))
    state = wait_for(kiosk.bus, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "degraded", 60)
    assert "disk is full" in state.msg.detail
    hb = wait_for(kiosk.bus, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "brain" and rx.msg.counters.get("store_faults", 0) >= 2, 15)
    assert hb.msg.state == "degraded" and proc.poll() is None
    filler.unlink()  # the operator frees space: no restart needed
    wait_for(kiosk.bus, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "ready", 20)
    kiosk.send(Person(event="arrived", track_id=7))
    kiosk.send(Person(event="engaged", track_id=7, distance_m=0.8))
    kiosk.said(lambda t: t.startswith("Hello"))
    kiosk.ask("What time is it?")
    kiosk.said(lambda t: t.startswith("It's "))
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "Traceback" not in err
    assert sum("disk is full" in line for line in err.splitlines()) == 1  # said once, not every retry


def test_damaged_store_is_quarantined_with_one_line(tmp_path, caplog):
    path = tmp_path / "brain.sqlite"
    good = sqlite3.connect(path)
    good.execute("create table t(x)")
    good.executemany("insert into t values (?)", [(uuid.uuid4().hex * 20,) for _ in range(200)])
    good.commit()
    good.close()
    data = bytearray(path.read_bytes())
    data[5000:9000] = b"\xff" * 4000  # a torn write in the middle of a page
    path.write_bytes(bytes(data))
    db = open_sqlite(path, "test store", lambda db: db.execute("create table if not exists t(x)"))
    db.execute("insert into t values ('fresh')")
    (aside,) = tmp_path.glob("brain.sqlite.damaged-*")
    assert aside.read_bytes() == bytes(data)  # kept exactly as it was
    lines = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(lines) == 1 and str(aside) in lines[0]


def test_locked_database_is_a_fault_to_retry(tmp_path):
    path = tmp_path / "s.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("create table t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreFault, match="locked"):
        open_sqlite(path, "test store", lambda db: (db.execute("PRAGMA busy_timeout = 100"), db.execute("PRAGMA journal_mode=WAL")))
    holder.execute("COMMIT")
    open_sqlite(path, "test store", lambda db: db.execute("PRAGMA journal_mode=WAL")).close()


def test_disk_filling_up_while_running_degrades_and_loses_no_mail(procs, tmp_path, small_disk):
    from assistant.messages import EmailAck, EmailReceived

    mnt, filler = small_disk
    filler.unlink()
    kiosk = Kiosk(procs, tmp_path)
    kiosk.config.write_text(kiosk.config.read_text().replace(str(tmp_path / "brain.sqlite"), str(mnt / "brain.sqlite")))
    kiosk.start_brain()
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=1000"], capture_output=True)  # the disk fills up
    mail = EmailReceived(mail_id="<full@x>", sender="carol@example.org", sender_name="Carol", subject="For everyone: fire drill",
                         text="At noon. " * 2000, to=["kiosk@example.org"])
    kiosk.send(mail)
    state = wait_for(kiosk.bus, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "degraded", 15)
    assert "mail store" in state.msg.detail
    assert kiosk.silent_for(EmailAck, 1.0) is None  # not acknowledged: the mail stays with the email service
    filler.unlink()
    kiosk.send(mail)  # the email service redelivers what was not acknowledged
    assert kiosk.expect(EmailAck, timeout=10).msg.mail_id == "<full@x>"
    wait_for(kiosk.bus, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "ready", 15)
