"""``assistant forget NAME``: remove what the kiosk keeps about one person.

- the enrolled face (``camera.gallery_dir/NAME.npz``; a running camera is told to drop it too);
- mail for them in the brain's store (read or not);
- the voice's audio cache: entries are keyed by a hash of the text, so one person's cannot be told
  apart; the whole cache is emptied (it refills with common phrases by itself). Personal speech
  is not cached in the first place (``voice.say`` with ``private``).

Transcripts and replies are kept in memory only (the status page's short history) and go with a
restart. Works with the kiosk running or stopped; prints what it removed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from assistant import paths
from assistant.config import Config

log = logging.getLogger(__name__)

#: Where the systemd units keep state and cache (StateDirectory=, CacheDirectory= under assistant/).
SYSTEMD_STATE = Path("/var/lib/assistant")
SYSTEMD_CACHE = Path("/var/cache/assistant")


def forget(config: Config, name: str) -> list[str]:
    """Remove ``name``'s face, mail and cached speech; returns one line per thing removed."""
    from services.brain.text import name_key

    key = name_key(name)
    if not key:
        raise ValueError(f"forget: {name!r} is not a name")
    done: list[str] = []
    gallery = Path(config.camera.gallery_dir)
    if gallery.is_dir():
        for path in sorted(gallery.glob("*.npz")):
            if name_key(path.stem) == key:
                path.unlink()
                done.append(f"face {path}")
    done += _forget_mail(config, key)
    done += _empty_voice_cache(config)
    return done


def _forget_mail(config: Config, key: str) -> list[str]:
    from services.brain.mailstore import MailStore

    done = []
    # Configured, else where the unit keeps it (StateDirectory=assistant/brain), else the user's.
    configured = paths.under_state(config.brain.store_path, "brain.sqlite")
    stores = [configured] if config.brain.store_path else [SYSTEMD_STATE / "brain" / "brain.sqlite", configured]
    for path in dict.fromkeys(stores):
        if not path.exists():
            continue
        store = MailStore(path)
        try:
            n = store.forget(key)
        finally:
            store.close()
        if n:
            done.append(f"{n} mail(s) in {path}")
    return done


def _empty_voice_cache(config: Config) -> list[str]:
    folders = [paths.voice_cache_dir(config.voice.cache.directory)]
    if not config.voice.cache.directory:
        folders.insert(0, SYSTEMD_CACHE / "voice")  # the unit's CacheDirectory=assistant/voice
    done = []
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            continue
        n = 0
        for path in folder.rglob("*"):
            if path.is_file():
                path.unlink()
                n += 1
        if n:
            done.append(f"{n} cached audio file(s) in {folder}")
    return done


def tell_the_camera(config: Config, name: str) -> bool:
    """Ask a running camera to drop ``name`` from its in-memory gallery (best effort)."""
    from assistant.bus import BusClient, BusError
    from assistant.messages import Command

    try:
        client = BusClient(config.bus, "cli-forget", identity="operator")
        client.wait_live(2.0)
    except BusError:
        return False
    try:
        client.publish(Command(service="camera", command="forget", args={"name": name}))
        client.pub.maintain()
    finally:
        client.close()
    return True
