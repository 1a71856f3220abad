"""Speech-to-text engines behind one interface; the service picks one by name from ``ENGINES``.

A new engine (Phonexia, ...) is a module with an ``SttEngine`` subclass and one line in
``ENGINES``; the service does not change. Engines load lazily, so an engine's heavy dependency
is imported only in a process that uses it.
"""

from __future__ import annotations

import importlib
import logging

from .base import EngineError, Result, SttEngine, WordTime

#: Engine name -> "module:Class".
ENGINES: dict[str, str] = {
    "pocketsphinx": "services.hearing.stt.pocketsphinx_engine:PocketSphinxEngine",
    "vosk": "services.hearing.stt.vosk_engine:VoskEngine",
    "whisper": "services.hearing.stt.whisper_engine:WhisperEngine",
}

log = logging.getLogger(__name__)


def engine_name(settings) -> str:
    """``auto``: vosk when a vosk model is configured, else whisper (pocketsphinx when Whisper cannot load)."""
    if settings.engine == "auto":
        return "vosk" if settings.vosk_model else "whisper"
    return settings.engine


def _build(name: str, settings) -> SttEngine:
    target = ENGINES.get(name)
    if target is None:
        raise EngineError(f"hearing.engine = {name!r} is not an STT engine; use auto or one of: {', '.join(sorted(ENGINES))}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_settings(settings)


def create_engine(settings) -> SttEngine:
    """Build the engine ``hearing.engine`` names from the hearing settings; ``EngineError`` says what to fix.

    With ``auto``, a Whisper model that cannot load is logged and pocketsphinx (whose model ships
    in its wheel) takes over; an engine named explicitly must load.
    """
    name = engine_name(settings)
    if settings.engine == "auto" and name == "whisper":
        try:
            return _build("whisper", settings)
        except EngineError as exc:
            log.warning("Whisper unavailable, falling back to pocketsphinx: %s", exc)
            return _build("pocketsphinx", settings)
    return _build(name, settings)


__all__ = ["ENGINES", "EngineError", "Result", "SttEngine", "WordTime", "create_engine", "engine_name"]
