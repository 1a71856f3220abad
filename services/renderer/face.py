"""The renderer's engine: the ``renderer`` section -> the face (``build``), and what each message does to it.

``Face`` holds the mouth drivers and the frame player and keeps the bookkeeping between them:
which utterance is being driven, barge-ins that make a late mouth stale, whom to look at. It has
no bus in it: the service hands it messages' fields and publishes what it returns, so it is
tested and benchmarked without one.

An utterance's way: ``on_utterance`` clocks it on the player and hands its sound to the screens
that play or store it, and returns a ``DriveJob`` (the mouth driver's work, blocking: the service
runs it off the loop); ``on_driven`` puts the mouths on the player's timeline unless a stop came
meanwhile. The frame loop runs on one of the runtime's workers (``FacePlayer``); its frames reach
the service through ``on_frame`` on that worker (``publish`` is thread-safe).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from assistant.config import Config
from assistant.config.schema import RendererSettings
from assistant.face.driver import MouthDriver
from assistant import paths
from assistant.messages import Done, Faces, FaceLandmarks, Playback, RendererStats, Utterance
from assistant.workers import Workers

from .drivers import DriverChoice, drive, pcm_from_bytes
from .player import FacePlayer, ShownFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriveJob:
    """One utterance's mouth to drive (blocking work, off the loop)."""

    utterance: Utterance
    pcm: np.ndarray
    driver: MouthDriver
    fps: float
    stops: int
    """Barge-ins before it was asked: one after it makes its mouths stale."""

    def run(self) -> np.ndarray:
        u = self.utterance
        return drive(self.driver, self.pcm, u.sample_rate, self.fps, u.phonemes, u.phoneme_alphabet)


def landmarks_message(f: ShownFrame) -> FaceLandmarks:
    """The ``face.landmarks`` of a shown frame."""
    pts = np.ascontiguousarray(f.landmarks, dtype="<f4")
    return FaceLandmarks(frame=f.index, shown_ns=f.shown_ns, shape=pts.shape, utterance_id=f.utterance_id,
                         points=pts.tobytes(), mouth_open=f.mouth_open,
                         audio_s=f.audio_s if f.utterance_id else 0.0)


class Face:
    """Mouth drivers + the frame player, steered by the voice, the camera and the hearing."""

    def __init__(self, settings: RendererSettings, drivers: DriverChoice, player: FacePlayer) -> None:
        self.settings, self.drivers, self.player = settings, drivers, player
        self.counters: dict[str, float] = {}
        self.driver_name = ""
        self._addressee = -1  # camera track the reply being said is for
        self._speaker = -1  # camera track of who is speaking (vision.speaker)
        self._stops = 0  # barge-ins so far: an utterance driven across one is not scheduled
        self._interrupted: set[str] = set()

    def _count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    # --- voice ---------------------------------------------------------------------------
    def on_utterance(self, u: Utterance) -> DriveJob | None:
        """Clock the utterance and pass its sound on; the mouth to drive, or None (logged) when unusable."""
        try:
            pcm = pcm_from_bytes(u.pcm, u.sample_rate)
        except ValueError as exc:
            self._count("bad_utterances")
            log.warning("utterance %s ignored: %s", u.utterance_id, exc)
            return None
        self.player.announce(u.utterance_id, u.play_at_ns, u.sample_rate)
        self.player.audio(pcm, u.sample_rate, u.play_at_ns, u.utterance_id)
        return DriveJob(u, pcm, self.drivers.pick(bool(u.phonemes)), self.settings.fps, self._stops)

    def on_driven(self, job: DriveJob, mouths: np.ndarray | None, error: BaseException | None = None) -> None:
        """The job's mouths (or why the driver failed: costs this utterance's mouth only) onto the timeline."""
        u = job.utterance
        if error is not None:
            self._count("driver_errors")
            log.warning("driver %s failed on utterance %s: %s", job.driver.name, u.utterance_id, error)
            return
        if job.stops != self._stops or u.utterance_id in self._interrupted:
            return  # stopped while it was being driven
        assert mouths is not None
        self.player.add(u.utterance_id, mouths, job.driver.neutral, u.play_at_ns, u.sample_rate, len(job.pcm))
        self.driver_name = job.driver.name
        self._count("utterances")

    def on_playback(self, p: Playback) -> None:
        self.player.playback(p.utterance_id, p.position_samples, p.at_ns, p.sample_rate)

    def on_done(self, d: Done) -> None:
        if d.last:
            self._addressee = -1
        interrupted = d.status != "finished"
        if interrupted:
            self._interrupted.add(d.utterance_id)
            if len(self._interrupted) > 256:
                self._interrupted.clear()
        self.player.finish(d.utterance_id, interrupted)

    def on_stop(self) -> None:
        self._stops += 1
        self.player.stop()
        self._count("stops")

    # --- the visitor and the words ---------------------------------------------------------
    def on_words(self, who: str, text: str, partial: bool, track_id: int | None = None) -> None:
        """The kiosk page's running transcript; a reply (``track_id``) also says whom to look at."""
        if track_id is not None:
            self._addressee = track_id  # look at whom the answer is for while saying it
        for screen in self.player.screens:
            caption = getattr(screen, "caption", None)  # only the web screen shows captions
            if caption is not None:
                caption(who, text, partial)

    def on_faces(self, faces: Faces) -> None:
        from .idle import gaze_from_faces

        # Eyes and head toward whom the kiosk answers while it speaks, else toward who is speaking.
        track = self._addressee if self._addressee >= 0 else self._speaker
        self.player.look_at(gaze_from_faces(faces, mirrored=self.settings.mirrored_camera, track_id=track))

    def on_speaker(self, track_id: int) -> None:
        self._speaker = track_id

    def on_person_left(self) -> None:
        self.player.look_at(None)  # alone again: back to the front at once, not after the timeout

    def on_speech(self, started: bool) -> None:
        self.player.listening(started)

    # --- out -------------------------------------------------------------------------------
    def stats(self) -> RendererStats:
        """``renderer.stats`` since the previous call (and the frame counters updated)."""
        st = self.player.take_stats()
        s = self.settings
        self.counters.update(frames=st.frames, dropped_frames=st.dropped)
        return RendererStats(
            fps=round(st.fps, 2), av_offset_ms=round(st.av_offset_ms, 2) if st.av_offset_ms is not None else 0.0,
            dropped_frames=st.dropped, frames=st.frames, width=s.width, height=s.height,
            driver=self.driver_name or self.drivers.pick(False).name,
            av_offset_ms_p95=round(st.av_offset_ms_p95, 2) if st.av_offset_ms_p95 is not None else 0.0,
            render_ms=round(st.render_ms, 2), record_dropped=sum(getattr(x, "dropped", 0) for x in self.player.screens))


def _web_options(config: Config) -> dict:
    """The kiosk page's guards (those of the status page), its jitter delay and where the browser microphone is."""
    from assistant.web import read_token, web_limits

    c, s = config, config.renderer
    return {"token": read_token(c.ops.token_file), "limits": web_limits(c), "delay_ms": s.web_delay_ms,
            "mic_port": c.hearing.web_port if c.hearing.mic_device == "web" else 0}


def build(config: Config, on_frame: Callable[[ShownFrame], None], workers: Workers,
          resources: contextlib.ExitStack) -> Face:
    """The face from ``config.renderer`` (the web screen also reads the ops guards and the hearing's
    browser microphone): drivers, portrait or neural avatar, synth, screens and the running frame
    loop, which goes on ``resources``."""
    import cv2

    from .avatar import Avatar
    from .idle import IdleLife
    from .outputs import open_outputs, screen_kinds
    from .synth import FaceSynth

    s = config.renderer
    cv2.setNumThreads(max(1, s.render_threads))
    kinds = screen_kinds(s.screen)
    portrait, lstm_model, neural = s.portrait or None, s.lstm_model, None
    if s.neural.avatar:
        from .neural import NeuralAvatar, search_path

        neural = NeuralAvatar.load(s.neural.avatar, search_path(s.neural.avatars_dir))
        if s.neural.use_portrait and neural.portrait is not None:
            portrait = neural.portrait
        if s.neural.use_lipsync and neural.lipsync is not None and not lstm_model:
            lstm_model = str(neural.lipsync)
    drivers = DriverChoice(s.driver, lstm_model)
    avatar = Avatar.build(portrait, paths.avatar_cache_dir(s.cache_dir))
    synth = FaceSynth(avatar, s)
    if neural is not None:
        from .neural import BaseLoop, LoopSynth, MouthGenerator, NeuralSynth

        n = s.neural
        gen = MouthGenerator(neural.generator, prefer_gpu=n.gpu, fp16=n.fp16, threads=n.threads)
        if n.use_base_video and neural.base_loop is not None:
            loop = BaseLoop(neural.base_loop)
            synth = LoopSynth(loop, gen, neural.crop, n.colour_match, out_size=(s.width, s.height), clock=time.monotonic)
            log.info("neural face: base video of %d frames at %dx%d", len(loop), *loop.size)
        else:
            synth = NeuralSynth(synth, gen, neural.crop, n.colour_match)
        log.info("neural face: avatar %s (%d px mouth on %s)", neural.name, gen.size, gen.device)
    seed = s.seed or time.monotonic_ns() & 0xFFFFFFFF
    web_options = _web_options(config) if "web" in kinds else None
    player = FacePlayer(
        synth,
        lambda: open_outputs(kinds, fps=s.fps, web_host=s.web_host, web_port=s.web_port,
                             jpeg_quality=s.web_jpeg_quality, max_width=min(s.width, s.web_max_width), record_path=s.record_path,
                             web_options=web_options, workers=workers),
        s.fps, IdleLife(seed=seed), s.lead_s,
        on_frame=on_frame, gaze_timeout_s=s.gaze_timeout_s, workers=workers)
    resources.callback(player.close)
    player.start()
    log.info("renderer %dx%d at %.0f fps on %s; driver %s", s.width, s.height, s.fps, ", ".join(kinds), s.driver)
    return Face(s, drivers, player)
