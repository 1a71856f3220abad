"""Keep PortAudio's device probing out of the service log.

Each ``pyaudio.PyAudio()`` makes PortAudio try every ALSA and JACK device, and those libraries
print a dozen lines to stderr for each that is absent (``ALSA lib confmisc.c:855:(parse_card)
cannot find card '0'``, ``jack server is not running``). That noise buries the one line that
matters, which our code logs itself when a device cannot be opened. ``quiet()`` routes the
libraries' messages to this module's logger at debug level, once per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_done = False
_keep: list[object] = []  # the C callbacks must outlive every call into the libraries

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...):
# the variadic tail is not read, so the fixed part is enough (the message is its format string).
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _alsa(file, line, function, err, fmt) -> None:
    log.debug("alsa: %s:%d %s: %s", (file or b"").decode(errors="replace"), line,
              (function or b"").decode(errors="replace"), (fmt or b"").decode(errors="replace"))


def _jack(message) -> None:
    log.debug("jack: %s", (message or b"").decode(errors="replace"))


def quiet() -> None:
    """Silence ALSA's and JACK's stderr chatter for this process (idempotent, never raises)."""
    global _done
    if _done:
        return
    _done = True
    os.environ.setdefault("JACK_NO_START_SERVER", "1")  # probing must not spawn a JACK server
    for name, setter, ctype, fn in (("asound", "snd_lib_error_set_handler", _ALSA_HANDLER, _alsa),
                                    ("jack", "jack_set_error_function", _JACK_HANDLER, _jack),
                                    ("jack", "jack_set_info_function", _JACK_HANDLER, _jack)):
        path = ctypes.util.find_library(name)
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            callback = ctype(fn)
            getattr(lib, setter)(callback)
            _keep.extend((lib, callback))
        except (OSError, AttributeError) as exc:
            log.debug("cannot quieten %s: %s", name, exc)
