"""The brain's entry function for the CLI (listed in ``assistant.entrypoints``): forget a person's mail."""

from __future__ import annotations

from assistant.config import Config
from assistant.names import name_key
from assistant.paths import SYSTEMD_STATE


def forget(config: Config, name: str) -> list[str]:
    """Delete mail for ``name`` (read or not) from the brain's store; one line per store touched.

    The store is the configured one, else where the unit keeps it (``StateDirectory=assistant/brain``)
    and the user's: the command may run outside the unit.
    """
    from .mailstore import MailStore
    from .service import store_path

    key = name_key(name)
    if not key:
        return []
    done = []
    paths = [store_path(config.brain)] if config.brain.store_path else [SYSTEMD_STATE / "brain" / "brain.sqlite", store_path(config.brain)]
    for path in dict.fromkeys(paths):
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
