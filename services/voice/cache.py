"""On-disk cache of synthesised audio, bounded in bytes, least recently used out first.

One file per entry: a magic line, a length-prefixed msgpack header (what was said, by which
engine and voice, the phoneme timings, a CRC32 of the audio) and the raw PCM. Entries are
written to a temporary file, flushed and renamed into place, so a crash leaves either the whole
entry or none; anything that does not check out on read (short, bad CRC, wrong text) is deleted
and treated as a miss. The file's mtime is its last use, so the LRU order survives restarts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable

import msgspec
import numpy as np

from assistant.messages.voice import Phoneme

from .tts.base import Synthesis, TtsError

log = logging.getLogger(__name__)

MAGIC = b"EAVOICE1\n"
SUFFIX = ".pcm"
TMP_PREFIX = ".tmp-"


class _Header(msgspec.Struct, array_like=True):
    engine: str
    voice: str
    lang: str
    text: str
    variant: str
    sample_rate: int
    n_samples: int
    crc32: int
    alphabet: str
    phonemes: list[Phoneme]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Header)


def cache_key(engine: str, voice: str, lang: str, text: str, variant: str = "") -> str:
    """Stable key: a hash of everything that changes the audio (``variant``: e.g. loudness target)."""
    blob = "\x1f".join((engine, voice, lang, text, variant)).encode("utf-8", errors="surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:40]


class AudioCache:
    """Thread-safe LRU cache of ``Synthesis`` objects on disk."""

    def __init__(self, directory: Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        """Entries live in ``directory`` (one file each); least recently used ones go beyond ``max_bytes``
        (``voice.cache``; the factory resolves the folder)."""
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, tuple[int, float]] = {}  # key -> (size, last use)
        self.hits = 0
        self.misses = 0
        self._scan()

    def _scan(self) -> None:
        """Index existing entries; remove temporary files left by a crash."""
        for path in self.dir.iterdir():
            try:
                if path.name.startswith(TMP_PREFIX):
                    path.unlink(missing_ok=True)
                    log.info("removed half-written cache file %s", path.name)
                elif path.suffix == SUFFIX:
                    st = path.stat()
                    self._index[path.stem] = (st.st_size, st.st_mtime)
            except OSError as exc:
                log.warning("cache scan: %s: %s", path, exc)
        self._evict()

    @property
    def total_bytes(self) -> int:
        """Bytes the entries take now."""
        with self._lock:
            return sum(size for size, _ in self._index.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}{SUFFIX}"

    def get(self, engine: str, voice: str, lang: str, text: str, variant: str = "") -> Synthesis | None:
        """The cached audio, or ``None`` (a damaged entry is deleted and counts as a miss)."""
        key = cache_key(engine, voice, lang, text, variant)
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            with self._lock:
                self._index.pop(key, None)
                self.misses += 1
            return None
        except OSError as exc:
            log.warning("cache read %s: %s", path.name, exc)
            self.misses += 1
            return None
        synthesis = self._decode(data, (engine, voice, lang, text, variant))
        if synthesis is None:
            log.warning("cache entry %s is damaged; removed", path.name)
            self._remove(key)
            self.misses += 1
            return None
        now = time.time()
        try:
            os.utime(path, (now, now))
        except OSError:
            pass
        with self._lock:
            self._index[key] = (len(data), now)
            self.hits += 1
        return synthesis

    @staticmethod
    def _decode(data: bytes, expect: tuple[str, str, str, str, str]) -> Synthesis | None:
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
            return None
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        try:
            h = _dec.decode(data[start:start + hlen])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        pcm_bytes = data[start + hlen:]
        if (h.engine, h.voice, h.lang, h.text, h.variant) != expect:
            return None  # hash collision or a file renamed by hand
        if len(pcm_bytes) != 2 * h.n_samples or zlib.crc32(pcm_bytes) != h.crc32 or h.sample_rate <= 0:
            return None
        pcm = np.frombuffer(pcm_bytes, dtype="<i2").astype(np.int16)
        return Synthesis(pcm=pcm, sample_rate=h.sample_rate, engine=h.engine, voice=h.voice,
                         phonemes=list(h.phonemes), alphabet=h.alphabet)

    def put(self, synthesis: Synthesis, lang: str, text: str, variant: str = "") -> None:
        """Store ``synthesis`` (spoken for ``text`` in ``lang``); failures are logged, never raised."""
        key = cache_key(synthesis.engine, synthesis.voice, lang, text, variant)
        pcm_bytes = np.ascontiguousarray(synthesis.pcm, dtype="<i2").tobytes()
        header = _enc.encode(_Header(synthesis.engine, synthesis.voice, lang, text, variant, synthesis.sample_rate,
                                     len(synthesis.pcm), zlib.crc32(pcm_bytes), synthesis.alphabet,
                                     list(synthesis.phonemes)))
        blob = MAGIC + struct.pack("<I", len(header)) + header + pcm_bytes
        if len(blob) > self.max_bytes:
            log.info("not caching %d bytes: larger than the whole cache", len(blob))
            return
        tmp = self.dir / f"{TMP_PREFIX}{key}-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())  # data on disk before the rename makes it visible
            os.replace(tmp, self._path(key))
        except OSError as exc:
            log.warning("cache write failed: %s", exc)
            tmp.unlink(missing_ok=True)
            return
        with self._lock:
            self._index[key] = (len(blob), time.time())
        self._evict()

    def _remove(self, key: str) -> None:
        with self._lock:
            self._index.pop(key, None)
        self._path(key).unlink(missing_ok=True)

    def _evict(self) -> None:
        with self._lock:
            total = sum(size for size, _ in self._index.values())
            victims = []
            for key, (size, _) in sorted(self._index.items(), key=lambda kv: kv[1][1]):
                if total <= self.max_bytes:
                    break
                victims.append(key)
                total -= size
            for key in victims:
                self._index.pop(key, None)
        for key in victims:
            self._path(key).unlink(missing_ok=True)
            log.debug("cache evicted %s", key)

    def prewarm(self, phrases: Iterable[str], synthesize: Callable[[str], object]) -> int:
        """Synthesise ``phrases`` ahead of time through ``synthesize`` (which fills this cache).

        Returns how many phrases were prepared; a phrase that cannot be spoken is logged and skipped.
        """
        done = 0
        for phrase in phrases:
            try:
                synthesize(phrase)
                done += 1
            except TtsError as exc:
                log.warning("prewarm %r: %s", phrase[:40], exc)
        return done
