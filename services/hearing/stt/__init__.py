"""Speech-to-text engines behind one interface; the service picks one by name from ``ENGINES``.

A new engine (whisper, Phonexia...) is a module with an ``SttEngine`` subclass and one line in
``ENGINES``; the service does not change. Engines load lazily, so an engine's heavy dependency
is imported only in a process that uses it.
"""

from __future__ import annotations

import importlib

from .base import EngineError, Result, SttEngine, WordTime

#: Engine name -> "module:Class".
ENGINES: dict[str, str] = {
    "pocketsphinx": "services.hearing.stt.pocketsphinx_engine:PocketSphinxEngine",
    "vosk": "services.hearing.stt.vosk_engine:VoskEngine",
}


def engine_name(settings) -> str:
    """``auto``: vosk when a vosk model is configured, else pocketsphinx (its model ships in the wheel)."""
    if settings.engine == "auto":
        return "vosk" if settings.vosk_model else "pocketsphinx"
    return settings.engine


def create_engine(settings) -> SttEngine:
    """Build the engine ``hearing.engine`` names from the hearing settings; ``EngineError`` says what to fix."""
    name = engine_name(settings)
    target = ENGINES.get(name)
    if target is None:
        raise EngineError(f"hearing.engine = {name!r} is not an STT engine; use auto or one of: {', '.join(sorted(ENGINES))}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_settings(settings)


__all__ = ["ENGINES", "EngineError", "Result", "SttEngine", "WordTime", "create_engine", "engine_name"]
