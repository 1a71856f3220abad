"""The voice's entry function for the CLI (listed in ``assistant.entrypoints``): empty the audio cache.

Cache entries are keyed by a hash of the text, so one person's cannot be told apart: ``forget``
empties the whole cache (it refills with common phrases by itself). Personal speech is not cached
in the first place (``voice.say`` with ``private``).
"""

from __future__ import annotations

from assistant.config import Config
from assistant.paths import SYSTEMD_CACHE


def forget(config: Config, name: str) -> list[str]:
    """Empty the configured cache, else the unit's (``CacheDirectory=assistant/voice``) and the user's."""
    from assistant import paths

    folders = [paths.voice_cache_dir(config.voice.cache.directory)]
    if not config.voice.cache.directory:
        folders.insert(0, SYSTEMD_CACHE / "voice")
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
