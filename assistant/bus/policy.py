"""Who may publish what: the broker checks every message against the sender's authenticated identity.

A rule is a message type (``voice.say``), a domain (``vision.*``), everything (``*``), or an
exception to those (``!voice.say``). The
built-in rules follow the architecture's data flow; ``bus.publish_rules`` adds or replaces rules
per identity, and ``bus.guest_types`` is what an identity without a rule may publish.
"""

from __future__ import annotations

from typing import Iterable, Mapping

#: Every identity may announce itself (under its own name: the broker checks ``service``).
COMMON = ("system.probe", "system.heartbeat", "system.state")

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "camera": ("vision.*",),
    "hearing": ("hearing.*", "!hearing.phrases"),
    "voice": ("voice.*", "!voice.say", "!voice.stop"),
    "renderer": ("face.*", "renderer.*"),
    "brain": ("brain.*", "voice.say", "voice.stop", "email.send", "email.ack", "hearing.phrases"),
    "email": ("email.*", "!email.send", "!email.ack"),
    "ops": ("ops.*",),
    "supervisor": ("system.command",),
    "operator": ("system.command", "voice.say", "voice.stop"),
    "echo": ("*",),  # the test echo service repeats every type back
}
"""Built-in rules: each service its own domain (new types there need no new rule); only the brain
asks for speech and mail, only the operator and supervisor send commands. ``!type`` denies."""

#: Types whose body names a service: the name must be the sender's own identity.
SELF_NAMED = ("system.heartbeat", "system.state")


class Policy:
    """Answers "may IDENTITY publish TYPE?" with a cache (the broker asks for every message)."""

    def __init__(self, rules: Mapping[str, Iterable[str]] | None = None, guest: Iterable[str] = COMMON) -> None:
        self.rules = {name: tuple(types) for name, types in {**DEFAULT_RULES, **(rules or {})}.items()}
        self.guest = tuple(guest)
        self._cache: dict[tuple[str, str], bool] = {}

    def patterns(self, identity: str) -> tuple[str, ...]:
        rules = self.rules.get(identity)
        return self.guest if rules is None else (*COMMON, *rules)

    def allows(self, identity: str, type_: str) -> bool:
        key = (identity, type_)
        ok = self._cache.get(key)
        if ok is None:
            patterns = self.patterns(identity)
            ok = (not any(p.startswith("!") and _match(p[1:], type_) for p in patterns)
                  and any(_match(p, type_) for p in patterns if not p.startswith("!")))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = ok
        return ok

    def speaks_for_others(self, identity: str) -> bool:
        """An identity allowed everything (``*``) may name other services in heartbeats (test tools)."""
        return "*" in self.patterns(identity)


def _match(pattern: str, type_: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return type_.startswith(pattern[:-1])
    return pattern == type_
