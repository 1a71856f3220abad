"""Live renderer measures over real processes: A/V offset, dropped frames, first moving frame.

Used by ``bench/renderer.py`` (run that). A broker and the renderer service (null screen, so
nothing but the renderer's own work is timed) run as child processes. The voice speaks on the
bus as the voice service does (``voice.utterance`` ahead of ``play_at``, ``voice.playback``
while playing, ``voice.done``): with the voice's own engines when they are installed (espeak-ng
TTS with phoneme timings, ``services.voice.player.Player`` on the WAV speaker twin, which
records when every sample leaves the speaker), else with ``tests/voice_twin.py``, whose speaker
plays sample ``i`` at exactly ``play_at + i / rate``.

Every ``face.landmarks`` says which sound time its mouth shows (``audio_s``) and when it was
shown (``shown_ns``); the A/V offset is shown time minus the time the speaker twin played that
sound (positive: mouth late; the renderer leads by ``lead_s`` on purpose). Frame numbers
count slots, so a missing number is a dropped frame. The first moving frame is the first whose
mouth visibly leaves its rest (0.01 inter-ocular), timed from the start of the sound
(``play_at`` plus the audio's leading silence); the worst of the utterances announced 300 ms
ahead is reported, and separately one announced at the earliest possible ``play_at``.
"""

from __future__ import annotations

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

from assistant.messages import Done, FaceLandmarks, Playback, RendererStats, SystemState, Utterance  # noqa: E402
from assistant.workers import Workers  # noqa: E402
from tests.procs import Procs, wait_for  # noqa: E402
from tests.voice_twin import VoiceTwin, espeak_speech, librivox_speech  # noqa: E402

FPS = 30.0
SHARED = REPO.parent / "shared" / "data"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


TEXT = "Good afternoon. I am Ada, the assistant at this desk. How can I help you today?"


def _utterances(tmp: Path) -> list[tuple[str, np.ndarray, int, list, str]]:
    out = []
    try:  # the voice service's espeak-ng engine: audio with its phoneme timings
        from services.voice.tts.espeak import EspeakEngine

        syn = EspeakEngine().synthesize(TEXT)
        out.append(("espeak-ng", syn.pcm, syn.sample_rate, list(syn.phonemes), syn.alphabet))
    except Exception as exc:  # noqa: BLE001 - fall back to the command line, audio only
        log(f"voice engine unavailable ({exc}): espeak-ng command, audio only")
        got = espeak_speech(tmp, TEXT)
        if got is not None:
            out.append(("espeak", got[0], got[1], [], ""))
    if (SHARED / "speech" / "librivox").is_dir():
        pcm, sr, phonemes = librivox_speech(SHARED, 3)
        out.append(("librivox", pcm, sr, phonemes, "arpabet"))
    if not out:
        raise SystemExit("no speech to play: install espeak-ng or provide ../shared/data")
    return out


class EngineVoice:
    """The voice's own engines in this process, speaking on the bus as the voice service will:
    ``services.voice.player.Player`` on the WAV speaker twin (``hardware.speaker.WavSinkSpeaker``),
    which records the ``monotonic_ns`` at which every sample leaves the speaker."""

    def __init__(self, client, folder: Path, report_every_s: float = 0.04):
        from hardware.speaker import WavSinkSpeaker
        from services.voice.player import Player

        self.client, self.report_every_s = client, report_every_s
        self.path = folder / "speaker.wav"
        self.speaker = WavSinkSpeaker(self.path, sample_rate=24000, block_frames=240, latency_s=0.02)
        self.player = Player(self.speaker)
        self.starts: dict[str, int] = {}
        self._done = threading.Event()
        self._workers = Workers("bench-voice")
        self.thread: threading.Thread | None = None

    def play(self, uid, pcm, sample_rate, ahead_s=0.3, phonemes=(), alphabet="", text=""):
        play_at = max(time.monotonic_ns() + int(ahead_s * 1e9), self.player.earliest_play_at_ns())
        self.client.publish(Utterance(utterance_id=uid, text=text or uid, sample_rate=sample_rate, play_at_ns=play_at,
                                      engine="espeak-ng", pcm=np.asarray(pcm, "<i2").tobytes(),
                                      phonemes=list(phonemes), phoneme_alphabet=alphabet))
        self._done.clear()
        self.player.schedule(uid, pcm, sample_rate, play_at, on_start=self._started, on_done=self._finished)
        self.thread = self._workers.start("voice-clock", self._clock, uid)
        return play_at

    def _started(self, uid: str, start_ns: int) -> None:
        self.starts[uid] = start_ns

    def _finished(self, uid: str, status: str, detail: str) -> None:
        self.client.publish(Done(utterance_id=uid, status=status, detail=detail))
        self._done.set()

    def _clock(self, uid: str) -> None:
        while not self._done.wait(self.report_every_s):
            pos = self.player.position()
            if pos is not None and pos.utterance_id == uid:
                self.client.publish(Playback(utterance_id=uid, position_samples=pos.position_samples,
                                             at_ns=pos.at_ns, sample_rate=pos.sample_rate))

    def wait(self, timeout: float = 30.0) -> None:
        self._done.wait(timeout)
        if self.thread is not None:
            self.thread.join(timeout)

    def sound_times(self):
        """Close the speaker; ``f(uid, audio_s) -> ns`` that sound left the speaker (from its recording)."""
        from hardware.speaker import read_recording

        self.player.close()
        _, rate, times = read_recording(self.path)

        def when(uid: str, audio_s: float) -> float:
            first = int(np.searchsorted(times, self.starts[uid]))
            return float(times[min(first + int(round(audio_s * rate)), len(times) - 1)])

        return when


def session(tmp: Path, width: int, height: int, plan: list[tuple[tuple, float]], fps: float = FPS) -> dict:
    """Run the renderer at one size through ``plan`` [(utterance, announce-ahead seconds)]."""
    procs = Procs(tmp / f"run{width}-{fps:g}")
    try:
        procs.broker()
        watcher = procs.client([FaceLandmarks.TYPE, RendererStats.TYPE, SystemState.TYPE])
        env = {"ASSISTANT_RENDERER__SCREEN": "null", "ASSISTANT_RENDERER__WIDTH": str(width),
               "ASSISTANT_RENDERER__HEIGHT": str(height), "ASSISTANT_RENDERER__FPS": str(fps),
               "ASSISTANT_RENDERER__CACHE_DIR": str(tmp / "avatars"), "ASSISTANT_RENDERER__SEED": "5"}
        proc = procs.start("services.renderer", env=env)
        wait_for(watcher, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "renderer"
                 and rx.msg.state in ("ready", "failed"), 60)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        voice_client = procs.client(source="voice")
        try:
            twin = EngineVoice(voice_client, tmp)
        except ImportError as exc:
            log(f"voice engines unavailable ({exc}): test-side stand-in")
            twin = VoiceTwin(voice_client)
        marks: list[FaceLandmarks] = []
        stats: list[RendererStats] = []

        def collect(until_ns: int) -> None:
            while time.monotonic_ns() < until_ns:
                rx = watcher.recv(timeout_ms=20)
                if rx is None:
                    continue
                if isinstance(rx.msg, FaceLandmarks):
                    marks.append(rx.msg)
                elif isinstance(rx.msg, RendererStats):
                    stats.append(rx.msg)

        collect(time.monotonic_ns() + int(1.0e9))  # idle: the renderer settles
        runs = []
        for k, ((name, pcm, sr, phonemes, alphabet), ahead) in enumerate(plan):
            uid = f"{name}-{k}"
            play_at = twin.play(uid, pcm, sr, ahead_s=ahead, phonemes=phonemes, alphabet=alphabet)
            end = play_at + int(len(pcm) / sr * 1e9)
            collect(end + int(0.6e9))
            twin.wait()
            runs.append((uid, play_at, end, len(pcm) / sr, ahead, sound_onset_s(pcm, sr)))
        proc.terminate()
        proc.communicate(timeout=30)
        if isinstance(twin, EngineVoice):
            when, voice = twin.sound_times(), "voice engines (espeak-ng, Player, WAV speaker twin)"
        else:
            starts = {r[0]: r[1] for r in runs}
            when, voice = (lambda uid, a: starts[uid] + a * 1e9), "test-side stand-in (tests/voice_twin.py)"
    finally:
        procs.cleanup()
    return {**analyse(marks, stats, runs, width, height, fps, when), "voice": voice}


def sound_onset_s(pcm: np.ndarray, sr: int) -> float:
    """Start of the sound: the first 10 ms whose RMS is within 26 dB of the loudest 10 ms."""
    hop = sr // 100
    x = pcm[: len(pcm) // hop * hop].astype(np.float32).reshape(-1, hop)
    rms = np.sqrt((x ** 2).mean(axis=1))
    return float(np.argmax(rms > 0.05 * rms.max()) * hop / sr)


def analyse(marks, stats, runs, width, height, fps, sound_time) -> dict:
    """``sound_time(uid, audio_s)``: monotonic ns at which that sound left the speaker."""
    offsets, firsts, firsts_now, shows, slots, shown = [], [], [], [], 0, 0
    for uid, play_at, end, duration, ahead, onset in runs:
        mine = [m for m in marks if m.utterance_id == uid]
        speech = [m for m in mine if 0.0 <= m.audio_s < duration]
        offsets += [(m.shown_ns - sound_time(uid, m.audio_s)) / 1e6 for m in speech]
        # First moving frame: the first whose mouth visibly leaves its rest, from the moment
        # the sound starts (play_at plus any leading silence in the audio).
        rest = np.median([m.mouth_open for m in marks if m.shown_ns < play_at - 0.2e9 and not m.utterance_id])
        moving = [m.shown_ns for m in mine if abs(m.mouth_open - rest) > 0.01]
        first = (min(moving) - (play_at + onset * 1e9)) / 1e6 if moving else float("nan")
        (firsts if ahead > 0 else firsts_now).append(first)
        shows.append((min(m.shown_ns for m in mine) - play_at) / 1e6 if mine else float("nan"))
        window = [m.frame for m in marks if play_at - 0.5e9 <= m.shown_ns <= end + 0.5e9]
        if window:
            slots += max(window) - min(window) + 1
            shown += len(window)
        log(f"  {width}x{height}@{fps:g} {uid}: {len(speech)} speech frames, offset median "
            f"{np.median(offsets[-len(speech):]) if speech else float('nan'):.1f} ms, utterance on screen from "
            f"{shows[-1]:.0f} ms, first moving frame {first:.0f} ms after the sound starts ({onset * 1000:.0f} ms after play_at)")
    off = np.array(offsets)
    spans = [(r[1] - 0.5e9, r[2] + 0.5e9) for r in runs]
    seconds = sum((b - a) / 1e9 for a, b in spans)
    return {
        "fps": round(shown / seconds, 2) if seconds else None,
        "av_offset_ms_p95": round(float(np.percentile(np.abs(off), 95)), 1) if len(off) else None,
        "av_offset_ms_median": round(float(np.median(off)), 1) if len(off) else None,
        "dropped_frames_pct": round(100 * (slots - shown) / slots, 2) if slots else None,
        "first_frame_ms": round(max(firsts), 1) if firsts else None,
        "first_frame_ms_announced_at_play_at": round(max(firsts_now), 1) if firsts_now else None,
        "utterance_shown_from_ms": round(max(shows), 1) if shows else None,
        "render_ms": stats[-1].render_ms if stats else None,
        "speech_frames": int(len(off)),
    }


def live(smoke: bool = False) -> dict:
    """``smoke`` (the test suite's run): one utterance announced ahead, one at ``play_at``, 720p only."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        utts = _utterances(tmp)[:1] if smoke else _utterances(tmp)
        plan = [(u, 0.3) for u in utts] + [(utts[0], 0.0)]
        log("live: broker + renderer service (null screen) + a voice on the bus")
        r720 = session(tmp, 1280, 720, plan)
        r1080 = r720 if smoke else session(tmp, 1920, 1080, [(u, 0.3) for u in utts])
    log(f"live 720p: {r720}")
    log(f"live 1080p: {r1080}")
    return {
        "av_offset_ms_p95": r720["av_offset_ms_p95"],
        "dropped_frames_pct": r720["dropped_frames_pct"],
        "first_frame_ms": r720["first_frame_ms"],
        "first_frame_ms_announced_at_play_at": r720["first_frame_ms_announced_at_play_at"],
        "av_offset_ms_median": r720["av_offset_ms_median"],
        "live_fps_720p": r720["fps"], "live_fps_1080p": r1080["fps"],
        "av_offset_ms_p95_1080p": r1080["av_offset_ms_p95"],
        "dropped_frames_pct_1080p": r1080["dropped_frames_pct"],
        "render_ms_720p": r720["render_ms"], "render_ms_1080p": r1080["render_ms"],
        "voice": r720["voice"] + "; the voice service over the bus is measured by bench/voice.py",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(live(smoke="--smoke" in sys.argv)))
