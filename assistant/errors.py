"""Errors shared across packages, kept free of heavy imports."""

from __future__ import annotations


class SetupError(Exception):
    """A service cannot run with this setting: ``str(err)`` is one line naming the key and the fix.

    Raised from a service's ``setup`` (directly, or as a subclass: a portrait that is no face, a
    speech model that is missing, a password file that cannot be read), it makes the service log
    that line, report ``failed`` and exit with ``EXIT_SETUP`` (2), which neither ``assistant up``
    nor systemd (``RestartPreventExitStatus=2``) restarts in a loop: the setting must change first.
    Anything else that fails at start-up may be passing (a server not up yet) and exits with 1,
    which is restarted with back-off.
    """


EXIT_SETUP = 2
"""Exit code of a service that cannot run as configured."""
