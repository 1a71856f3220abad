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

from assistant.config import Config
from assistant.entrypoints import FORGET, entry
from assistant.names import name_key


def forget(config: Config, name: str) -> list[str]:
    """Remove ``name``'s face, mail and cached speech; returns one line per thing removed.

    Each service removes its own (its ``forget`` entry function, ``assistant.entrypoints.FORGET``).
    """
    if not name_key(name):
        raise ValueError(f"forget: {name!r} is not a name")
    done: list[str] = []
    for hook in FORGET:
        done += entry(hook)(config, name)
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
