"""On-disk LRU audio cache: hits skip synthesis, damage is detected, a crash leaves no half entry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from services.voice.cache import TMP_PREFIX, AudioCache
from services.voice.synthesizer import Synthesizer
from services.voice.tts.failover import FailoverChain
from services.voice.tts.gtts_engine import GttsEngine

REPO = Path(__file__).resolve().parents[2]


def test_round_trip_keeps_audio_and_phonemes(tmp_path, espeak):
    cache = AudioCache(tmp_path, 10_000_000)
    s = espeak.synthesize("Round trip.")
    cache.put(s, "en", "Round trip.")
    got = AudioCache(tmp_path, 10_000_000).get("espeak-ng", s.voice, "en", "Round trip.")
    assert got is not None and np.array_equal(got.pcm, s.pcm) and got.sample_rate == s.sample_rate
    assert got.phonemes == s.phonemes and got.alphabet == "espeak"
    assert cache.get("espeak-ng", s.voice, "en", "Round trip!") is None  # other text
    assert cache.get("espeak-ng", "mb-us2", "en", "Round trip.") is None  # other voice


def test_hit_skips_synthesis(tmp_path, google, espeak):
    synth = Synthesizer(FailoverChain([GttsEngine(), espeak]), AudioCache(tmp_path))
    first = synth.speak("Welcome to the front desk.")
    assert first.engine == "gtts" and not first.cached and len(google.requests) == 1
    t0 = time.perf_counter()
    second = synth.speak("Welcome to the front desk.")
    elapsed = time.perf_counter() - t0
    assert second.cached and second.engine == "gtts"
    assert len(google.requests) == 1, "a cache hit must not reach the engine"
    assert np.array_equal(second.synthesis.pcm, first.synthesis.pcm)
    assert elapsed < 0.05


def test_prewarm(tmp_path, offline, espeak):
    cache = AudioCache(tmp_path)
    synth = Synthesizer(FailoverChain([espeak]), cache)
    assert synth.prewarm(["Hello!", "One moment, please.", "😀"]) == 2
    assert len(cache) == 2
    assert synth.speak("One moment, please.").cached


def test_damaged_entries_are_misses_and_removed(tmp_path, espeak):
    cache = AudioCache(tmp_path)
    for text in ("one", "two", "three"):
        cache.put(espeak.synthesize(text), "en", text)
    files = sorted(tmp_path.glob("*.pcm"), key=lambda p: p.stat().st_size)
    assert len(files) == 3
    # Truncated, one byte flipped, zeroed: every kind of damage is caught.
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    data = bytearray(files[1].read_bytes())
    data[-100] ^= 0x40
    files[1].write_bytes(bytes(data))
    files[2].write_bytes(b"\0" * 300)
    (tmp_path / f"{TMP_PREFIX}left-by-a-crash").write_bytes(b"EAVOICE1\n partial")
    cache = AudioCache(tmp_path)
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*")), "temp files from a crash are removed at start"
    for text in ("one", "two", "three"):
        assert cache.get("espeak-ng", "en", "en", text) is None
    assert not list(tmp_path.glob("*.pcm")) and len(cache) == 0


def test_bounded_in_bytes_least_recently_used_out(tmp_path, espeak):
    s = espeak.synthesize("Some phrase to cache.")
    size = 2 * len(s.pcm) + 300
    cache = AudioCache(tmp_path, max_bytes=int(3.5 * size))
    for i in range(3):
        cache.put(s, "en", f"phrase {i}")
        time.sleep(0.01)  # distinct last-use times
    assert cache.get("espeak-ng", s.voice, "en", "phrase 0") is not None  # phrase 0 used again
    time.sleep(0.01)
    cache.put(s, "en", "phrase 3")
    assert cache.total_bytes <= int(3.5 * size) and len(cache) == 3
    assert cache.get("espeak-ng", s.voice, "en", "phrase 1") is None, "least recently used goes first"
    assert cache.get("espeak-ng", s.voice, "en", "phrase 0") is not None
    # The bound holds across a restart too.
    assert AudioCache(tmp_path, max_bytes=size + 10).total_bytes <= size + 10


WRITER = r"""
import sys, numpy as np
from pathlib import Path
from services.voice.cache import AudioCache
from services.voice.tts.base import Synthesis
cache = AudioCache(Path(sys.argv[1]), 1 << 30)
rng = np.random.default_rng(0)
pcm = rng.integers(-20000, 20000, 2_000_000).astype(np.int16)  # 4 MB entries: slow enough to interrupt
print("ready", flush=True)
i = 0
while True:
    cache.put(Synthesis(pcm, 16000, "espeak-ng", "en"), "en", f"text {i}")
    i += 1
"""


def test_killed_writer_leaves_only_whole_entries(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    cache = AudioCache(tmp_path, 1 << 30)
    n = len(cache)
    assert n >= 1, "the writer got at least one entry in"
    whole = sum(cache.get("espeak-ng", "en", "en", f"text {i}") is not None for i in range(n + 1))
    assert whole == n, "every entry on disk is complete"
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))
