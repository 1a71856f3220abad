"""espeak-ng, reached one way: the one binding every part of the assistant uses.

Two doors, both here:

- the library, libespeak-ng through ctypes (:func:`load`, :func:`speak`): audio plus the phoneme
  events that time each phoneme to the sample, for every language; the voice's espeak-ng engine
  and the lip-sync training data use it. One process-wide instance: libespeak-ng keeps global
  state (one voice, one output buffer), so every call goes through ``ESPEAK_LOCK``. Synthesis runs
  in synchronous mode: ``espeak_Synth`` calls our callback on the calling thread with audio
  chunks and events, and ctypes releases the GIL while the C code runs, so a worker thread
  synthesising does not stall the rest of the process.
- the ``espeak-ng`` program (:func:`write_wav`, :func:`mbrola_pho`): speech into a WAV file with
  any installed voice (the scripted visitor, test and bench fixtures), and the phoneme file that
  ``mbrola`` speaks. A separate process, so it works whichever library this process loaded (the
  copy bundled with ``espeakng-loader`` has no MBROLA support).
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.messages.voice import Phoneme

log = logging.getLogger(__name__)

ESPEAK_LOCK = threading.RLock()

# espeak_AUDIO_OUTPUT
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize options
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
# espeak_Synth flags and position type
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
POS_CHARACTER = 1
# espeak_EVENT_TYPE
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
# espeak_PARAMETER
PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4
# espeak_ERROR
EE_OK = 0

#: Where Debian's espeak-ng-data (with the ``mb-*`` MBROLA voice files) lives; the library is beside it.
SYSTEM_DATA_DIRS = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
                    "/usr/share/espeak-ng-data")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class VoiceSpec(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # raw pointer: (priority byte, name, NUL)* ended by NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


@dataclass
class Library:
    """The loaded library, its sample rate and the voices it knows."""

    lib: ctypes.CDLL
    path: str
    sample_rate: int
    data_path: str
    voices: dict[str, str]
    """Voice identifier (``gmw/en-US``, ``mb/mb-us2``) -> name; plus the language codes."""
    languages: set[str]
    current_voice: str | None = field(default=None, compare=False)
    """The voice last set (under ``ESPEAK_LOCK``): setting it again would reload its files."""


_library: Library | None = None


def system_library() -> tuple[str, str] | None:
    """Debian's libespeak-ng and its data, when installed (built with MBROLA support).

    The copy bundled with ``espeakng-loader`` is built without MBROLA (it rejects the ``mbrola``
    voice attribute and speaks with its own voice instead), so MBROLA voices need this one.
    """
    for data in SYSTEM_DATA_DIRS:
        lib = Path(data).parent / "libespeak-ng.so.1"
        if lib.is_file() and (Path(data) / "voices").is_dir():
            return str(lib), data
    return None


def load(library_path: str | None = None, data_path: str | None = None) -> Library:
    """Load and initialise libespeak-ng once per process (later calls return the same one)."""
    global _library
    with ESPEAK_LOCK:
        if _library is not None:
            if library_path and data_path and (library_path, data_path) != (_library.path, _library.data_path):
                log.warning("libespeak-ng already loaded from %s; ignoring %s (one per process)",
                            _library.path, library_path)
            return _library
        if library_path is None or data_path is None:
            try:
                import espeakng_loader
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError("espeak-ng needs the voice extra: pip install 'embodied-assistant[voice]'") from exc
            library_path = library_path or espeakng_loader.get_library_path()
            data_path = data_path or espeakng_loader.get_data_path()
        lib = ctypes.CDLL(library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(VoiceSpec)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(VoiceSpec))
        lib.espeak_ng_GetSampleRate.argtypes = []
        lib.espeak_ng_GetSampleRate.restype = ctypes.c_int
        # Synth-mode buffer of 100 ms: chunks arrive often enough to stop a long text quickly.
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 100, data_path.encode(),
                                     INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed ({rate}) with data at {data_path}")
        voices, languages = _list_voices(lib)
        _library = Library(lib, library_path, rate, data_path, voices, languages)
        log.info("libespeak-ng %s: %d Hz, %d voices, data %s", library_path, rate, len(voices), data_path)
        return _library


def _list_voices(lib: ctypes.CDLL) -> tuple[dict[str, str], set[str]]:
    voices: dict[str, str] = {}
    languages: set[str] = set()
    table = lib.espeak_ListVoices(None)
    i = 0
    while table[i]:
        v = table[i].contents
        ident = (v.identifier or b"").decode(errors="replace")
        voices[ident] = (v.name or b"").decode(errors="replace")
        # ``languages`` is a list of (priority byte, NUL-terminated name), ended by an empty name.
        raw = v.languages
        off = 0
        while raw and ctypes.string_at(raw + off, 1) != b"\0":
            name = ctypes.string_at(raw + off + 1)
            languages.add(name.decode(errors="replace").lower())
            off += len(name) + 2
        i += 1
    return voices, languages


class EspeakError(RuntimeError):
    """espeak-ng refused: ``permanent`` when trying again cannot help (an unknown voice)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Speech:
    """What :func:`speak` returns: int16 mono audio and the phoneme events (label, start sample)."""

    pcm: np.ndarray
    sample_rate: int
    marks: list[tuple[str, int]]

    def phonemes(self) -> list[Phoneme]:
        return phonemes(self.marks, self.pcm.size, self.sample_rate)


def speak(library: Library, text: str, voice: str, rate_wpm: int | None = None, pitch: int | None = None,
          pitch_range: int | None = None, volume: int | None = None) -> Speech:
    """``text`` spoken with ``voice`` by the loaded library; parameters left ``None`` stay as they are."""
    chunks: list[bytes] = []
    marks: list[tuple[str, int]] = []

    def on_audio(wav, numsamples, events) -> int:
        if wav and numsamples > 0:
            chunks.append(ctypes.string_at(wav, numsamples * 2))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                marks.append((ev.id.string.decode("utf-8", errors="replace"), ev.sample))
            i += 1
        return 0

    callback = SYNTH_CALLBACK(on_audio)  # kept alive until Synth returns
    # A NUL would end the C string early (the rest silently unspoken); other control
    # characters are not speech either. Lone surrogates cannot be encoded: replace them.
    text = "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text)
    data = text.encode("utf-8", errors="replace") + b"\0"
    with ESPEAK_LOCK:
        lib = library.lib
        if voice != library.current_voice:
            err = lib.espeak_SetVoiceByName(voice.encode())
            if err != EE_OK:
                library.current_voice = None
                raise EspeakError(f"espeak-ng could not load voice {voice!r} (error {err})", permanent=True)
            library.current_voice = voice
        for param, value in ((PARAM_RATE, rate_wpm), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range), (PARAM_VOLUME, volume)):
            if value is not None:
                lib.espeak_SetParameter(param, int(value), 0)
        rate = lib.espeak_ng_GetSampleRate()  # 16 kHz for MBROLA voices, 22.05 kHz otherwise
        lib.espeak_SetSynthCallback(callback)
        err = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if err != EE_OK:
            raise EspeakError(f"espeak-ng synthesis failed (error {err})")
    return Speech(np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16), rate, marks)


def phonemes(marks: Sequence[tuple[str, int]], n_samples: int, rate: int) -> list[Phoneme]:
    """Phoneme events (label, start sample) -> phonemes with durations, each ending where the next starts."""
    out: list[Phoneme] = []
    for i, (label, start) in enumerate(marks):
        end = marks[i + 1][1] if i + 1 < len(marks) else n_samples
        start = min(max(start, 0), n_samples)
        end = min(max(end, start), n_samples)
        out.append(Phoneme(label, start / rate, (end - start) / rate))
    return out


# -- the espeak-ng program ----------------------------------------------------------------------

def program() -> str | None:
    """The ``espeak-ng`` program (Debian's ``espeak-ng`` package), or ``None`` when it is not installed."""
    return shutil.which("espeak-ng")


def write_wav(text: str, path: Path, voice: str = "", *, ssml: bool = False, args: Sequence[str] = (),
              timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``espeak-ng [-m] [-v VOICE] ARGS -w PATH TEXT``; the caller checks ``returncode`` (and the file).

    ``FileNotFoundError`` when the program is missing (see :func:`program`).
    """
    exe = program()
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng (make setup does)")
    argv = [exe, *(["-m"] if ssml else []), *(["-v", voice] if voice else []), *args, "-w", str(path), text]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def mbrola_pho(text: str, voice: str, rate_wpm: int, timeout: float = 30.0) -> str:
    """The MBROLA phoneme file (SAMPA phonemes and durations in ms) espeak-ng writes for ``mb-VOICE``."""
    exe = program() or "espeak-ng"
    return subprocess.run([exe, "-v", f"mb-{voice}", "-s", str(rate_wpm), "-q", "--pho", text],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout
