"""Benchmark of the voice engine layer: first sound, cache, play_at accuracy, stop, failover.

Run from the repository root: ``python bench/voice.py [--runs N]``. Progress goes to stderr; the
last line of stdout is one JSON object. Everything is measured at the simulated speaker (the
WAV twin records when each sample leaves it), with real espeak-ng synthesis.

- first_sound_ms: reply text in -> first audible sample out of the speaker, for a
  three-sentence reply streamed sentence by sentence (cold cache).
- cached_first_sound_ms: the same replies again (cache hits).
- play_at_error_ms: |when the first audible sample left - when it was scheduled to|.
- stop_ms: stop() -> last audible sample out of the speaker.
- failover_ms: gTTS with the network unreachable (DNS fails) -> espeak-ng audio ready;
  ``failover_hang_beyond_timeout_ms``: the same when the network drops packets (a proxy that
  never answers), minus the configured timeout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.speaker import WavSinkSpeaker, read_recording  # noqa: E402
from services.voice.cache import AudioCache, CacheSettings  # noqa: E402
from services.voice.player import Player  # noqa: E402
from services.voice.reply import ReplyStream  # noqa: E402
from services.voice.synthesizer import Synthesizer  # noqa: E402
from services.voice.tts.espeak import EspeakEngine  # noqa: E402
from services.voice.tts.failover import FailoverChain, FailoverSettings  # noqa: E402
from services.voice.tts.gtts_engine import GttsEngine, GttsSettings  # noqa: E402

MS = 1_000_000
THRESHOLD = 200  # |sample| above this is "audible"
REPLIES = [
    "Good {n} morning, welcome to the front desk. Your visitor badge is ready at the counter. "
    "Please take the lift to the third floor.",
    "I found {n} two meetings for you today. The first one starts at ten in room four. "
    "Would you like me to send the details by email?",
]


def log(msg: str, *args) -> None:
    print(msg % args, file=sys.stderr, flush=True)


def pct(values, q):
    return round(float(np.percentile(values, q)), 2) if values else None


def audible_after(pcm, times, after_ns):
    idx = np.nonzero((np.abs(pcm.astype(np.int32)) > THRESHOLD) & (times >= after_ns))[0]
    return int(times[idx[0]]) if idx.size else None


def first_sounds(synth, player, texts):
    """Per reply: (t0, play_at + lead of the first sentence) -> measured later from the recording."""
    marks = []
    for text in texts:
        t0 = time.monotonic_ns()
        stream = ReplyStream(synth, text)
        first = next(iter(stream))
        pcm = first.spoken.synthesis
        play_at = player.earliest_play_at_ns()
        lead = int(np.nonzero(np.abs(pcm.pcm.astype(np.int32)) > THRESHOLD)[0][0])
        player.schedule("first", pcm.pcm, pcm.sample_rate, play_at)
        marks.append((t0, play_at + lead * 10**9 // pcm.sample_rate))
        for _ in stream:  # the rest are synthesised meanwhile; not played, to keep the bench short
            pass
        time.sleep(0.15)
        player.stop("bench")
        time.sleep(0.05)
    return marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=12)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    tmp = Path(tempfile.mkdtemp(prefix="voice-bench-"))
    espeak = EspeakEngine()
    espeak.synthesize("warm up")
    synth = Synthesizer(FailoverChain([espeak]), AudioCache(CacheSettings(tmp / "cache")))
    speaker = WavSinkSpeaker(tmp / "out.wav", sample_rate=espeak._lib.sample_rate, block_frames=110,
                             latency_s=0.010)
    player = Player(speaker)
    synth.speak("Warm up the pipeline once, as the service does at start-up.")
    time.sleep(0.1)

    texts = [REPLIES[i % 2].format(n=f"number {i}") for i in range(args.runs)]
    log("first sound, cold cache: %d replies", len(texts))
    cold = first_sounds(synth, player, texts)
    log("first sound, cached")
    warm = first_sounds(synth, player, texts)

    log("play_at accuracy")
    s = espeak.synthesize("Accurate timing matters for the lips.")
    lead = int(np.nonzero(np.abs(s.pcm.astype(np.int32)) > THRESHOLD)[0][0])
    scheduled = []
    for _ in range(args.runs):
        play_at = time.monotonic_ns() + 40 * MS
        player.schedule("t", s.pcm[: s.sample_rate // 2], s.sample_rate, play_at)
        scheduled.append(play_at + lead * 10**9 // s.sample_rate)
        time.sleep(0.6)

    log("stop latency")
    long = espeak.synthesize("This is a long sentence that keeps going so that it can be interrupted in the middle.")
    stops = []
    for _ in range(args.runs):
        player.schedule("s", long.pcm, long.sample_rate, player.earliest_play_at_ns())
        time.sleep(0.3)
        stops.append(player.stop("bench"))
        time.sleep(0.15)
    player.close()

    pcm, rate, times = read_recording(speaker.path)
    first_ms = [(audible_after(pcm, times, t0) - t0) / MS for t0, _ in cold]
    cached_ms = [(audible_after(pcm, times, t0) - t0) / MS for t0, _ in warm]
    errors = [abs(audible_after(pcm, times, target - 20 * MS) - target) / MS for _, target in cold + warm]
    errors += [abs(audible_after(pcm, times, target - 20 * MS) - target) / MS for target in scheduled]
    stop_ms = []
    for requested in stops:
        after = np.nonzero((times >= requested) & (np.abs(pcm.astype(np.int32)) > THRESHOLD))[0]
        # last audible sample of this utterance after the request (before the next one starts)
        window = after[times[after] < requested + 100 * MS]
        stop_ms.append(max(0.0, (int(times[window[-1]]) - requested) / MS) if window.size else 0.0)

    log("failover from unreachable gTTS")
    failover = []
    for i in range(max(3, args.runs // 2)):
        chain = FailoverChain([GttsEngine(GttsSettings(timeout_s=1.5)), espeak], FailoverSettings(timeout_s=1.5))
        t0 = time.perf_counter()
        spoken = chain.synthesize(f"Sorry, one moment please {i}.")
        failover.append((time.perf_counter() - t0) * 1e3)
        assert spoken.engine == "espeak-ng", spoken
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    os.environ["https_proxy"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    hang = []
    for i in range(3):
        chain = FailoverChain([GttsEngine(GttsSettings(timeout_s=5)), espeak], FailoverSettings(timeout_s=0.5))
        t0 = time.perf_counter()
        chain.synthesize(f"Still there {i}?")
        hang.append((time.perf_counter() - t0) * 1e3 - 500)
    os.environ.pop("https_proxy")
    sock.close()

    result = {
        "first_sound_ms_p50": pct(first_ms, 50),
        "first_sound_ms_p95": pct(first_ms, 95),
        "cached_first_sound_ms_p50": pct(cached_ms, 50),
        "play_at_error_ms_p95": pct(errors, 95),
        "stop_ms_p95": pct(stop_ms, 95),
        "failover_ms_p50": pct(failover, 50),
        "failover_hang_beyond_timeout_ms_p50": pct(hang, 50),
        "underruns": speaker.underruns,
        "runs": args.runs,
    }
    log("first sound ms per reply: %s", [round(x, 1) for x in first_ms])
    log("done: %s", result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
