"""ctypes binding to libespeak-ng: one process-wide instance behind a lock.

libespeak-ng keeps global state (one voice, one output buffer), so every call goes through
``ESPEAK_LOCK``. Synthesis runs in synchronous mode: ``espeak_Synth`` calls our callback on the
calling thread with audio chunks and events, and ctypes releases the GIL while the C code runs,
so a worker thread synthesising does not stall the rest of the process.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

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
