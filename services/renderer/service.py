"""The renderer service: the face on the screen, lip-synced to the voice, alive when idle.

Thin handler over the engines: ``voice.utterance`` is driven into mouths on a worker thread
and scheduled on the player's timeline; ``voice.playback`` / ``voice.done`` / ``voice.stop``
steer it; ``vision.faces`` and ``hearing.speech`` steer idle life. The frame loop runs on the
player's own thread and publishes ``face.landmarks`` for every frame it shows; the service
publishes ``renderer.stats`` about once a second.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future

import numpy as np

from assistant import paths
from assistant.messages import (Done, Faces, FaceLandmarks, Partial, Person, Playback, Received, RendererStats, Reply, Speaker, Speech, Stop, Transcript,
                                Utterance)
from assistant.service import Service, on

log = logging.getLogger(__name__)


class RendererService(Service):
    """Show the lip-synced face."""

    name = "renderer"

    def setup(self) -> None:
        import cv2

        self._addressee = -1  # camera track the reply being said is for
        self._speaker = -1  # camera track of who is speaking (vision.speaker)

        from .avatar import Avatar
        from .drivers import DriverChoice
        from .idle import IdleLife
        from .outputs import open_outputs, screen_kinds
        from .player import FacePlayer
        from .synth import FaceSynth, SynthSettings
        from .timeline import TimelineSettings

        s = self.settings = self.config.renderer
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
        self.drivers = DriverChoice(s.driver, lstm_model)
        avatar = Avatar.build(portrait, paths.avatar_cache_dir(s.cache_dir))
        synth = FaceSynth(avatar, SynthSettings(width=s.width, height=s.height, zoom=s.zoom, letterbox=s.letterbox,
                                                matte=s.still_room))
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
        self.player = FacePlayer(
            synth,
            lambda: open_outputs(kinds, fps=s.fps, web_host=s.web_host, web_port=s.web_port,
                                 jpeg_quality=s.web_jpeg_quality, max_width=min(s.width, s.web_max_width), record_path=s.record_path,
                                 web_options=self._web_options() if "web" in kinds else None),
            s.fps, IdleLife(seed=seed), TimelineSettings(lead_s=s.lead_s),
            on_frame=self._publish_frame, gaze_timeout_s=s.gaze_timeout_s)
        self.player.start()
        self.submit(self.drivers.warm_up)
        self.driver_name = ""
        self._stops = 0  # barge-ins so far: an utterance driven across one is not scheduled
        self._interrupted: set[str] = set()
        self.every(s.stats_period_s, self._publish_stats)
        log.info("renderer %dx%d at %.0f fps on %s; driver %s", s.width, s.height, s.fps, ", ".join(kinds), s.driver)

    def _web_options(self) -> dict:
        """The kiosk page's guards (those of the status page), its jitter delay and where the browser microphone is."""
        from assistant.web import read_token, web_limits

        c, s = self.config, self.settings
        return {"token": read_token(c.ops.token_file), "limits": web_limits(c), "delay_ms": s.web_delay_ms,
                "mic_port": c.hearing.web_port if c.hearing.mic_device == "web" else 0}

    # --- the kiosk page's running transcript ------------------------------------------------
    @on(Transcript, Partial, Reply)
    def on_words(self, rx: Received) -> None:
        msg = rx.msg
        who = "assistant" if isinstance(msg, Reply) else "visitor"
        if isinstance(msg, Reply):
            self._addressee = msg.track_id  # look at whom the answer is for while saying it
        for screen in self.player.screens:
            caption = getattr(screen, "caption", None)
            if caption is not None:
                caption(who, msg.text, isinstance(msg, Partial))

    def teardown(self) -> None:
        player = getattr(self, "player", None)
        if player is not None:
            player.close()

    # --- voice ---------------------------------------------------------------------------
    @on(Utterance)
    def on_utterance(self, rx: Received) -> None:
        from .drivers import drive, pcm_from_bytes

        u: Utterance = rx.msg
        try:
            pcm = pcm_from_bytes(u.pcm, u.sample_rate)
        except ValueError as exc:
            self.count("bad_utterances")
            log.warning("utterance %s ignored: %s", u.utterance_id, exc)
            return
        self.player.announce(u.utterance_id, u.play_at_ns, u.sample_rate)
        self.player.audio(pcm, u.sample_rate, u.play_at_ns, u.utterance_id)
        driver = self.drivers.pick(bool(u.phonemes))
        stops = self._stops
        self.submit(drive, driver, pcm, u.sample_rate, self.settings.fps, u.phonemes, u.phoneme_alphabet,
                    then=lambda fut: self._driven(u, len(pcm), driver, stops, fut))

    def _driven(self, u: Utterance, n_samples: int, driver, stops: int, fut: Future) -> None:
        try:
            mouths = fut.result()
        except Exception as exc:  # noqa: BLE001 - a driver failure costs this utterance's mouth only
            self.count("driver_errors")
            log.warning("driver %s failed on utterance %s: %s", driver.name, u.utterance_id, exc)
            return
        if stops != self._stops or u.utterance_id in self._interrupted:
            return  # stopped while it was being driven
        self.player.add(u.utterance_id, mouths, driver.neutral, u.play_at_ns, u.sample_rate, n_samples)
        self.driver_name = driver.name
        self.count("utterances")

    @on(Playback)
    def on_playback(self, rx: Received) -> None:
        p: Playback = rx.msg
        self.player.playback(p.utterance_id, p.position_samples, p.at_ns, p.sample_rate)

    @on(Done)
    def on_done(self, rx: Received) -> None:
        d: Done = rx.msg
        if d.last:
            self._addressee = -1
        interrupted = d.status != "finished"
        if interrupted:
            self._interrupted.add(d.utterance_id)
            if len(self._interrupted) > 256:
                self._interrupted.clear()
        self.player.finish(d.utterance_id, interrupted)

    @on(Stop)
    def on_stop(self, rx: Received) -> None:
        self._stops += 1
        self.player.stop()
        self.count("stops")

    # --- the visitor -----------------------------------------------------------------------
    @on(Faces)
    def on_faces(self, rx: Received) -> None:
        from .idle import gaze_from_faces

        # Eyes and head toward whom the kiosk answers while it speaks, else toward who is speaking.
        track = self._addressee if self._addressee >= 0 else self._speaker
        self.player.look_at(gaze_from_faces(rx.msg, mirrored=self.settings.mirrored_camera, track_id=track))

    @on(Speaker)
    def on_speaker(self, rx: Received) -> None:
        self._speaker = rx.msg.track_id

    @on(Person)
    def on_person(self, rx: Received) -> None:
        if rx.msg.event == "left":  # alone again: back to the front at once, not after the timeout
            self.player.look_at(None)

    @on(Speech)
    def on_speech(self, rx: Received) -> None:
        self.player.listening(rx.msg.event == "started")

    # --- out -------------------------------------------------------------------------------
    def _publish_frame(self, f) -> None:
        """Called on the frame thread for every shown frame (``publish`` is thread-safe)."""
        pts = np.ascontiguousarray(f.landmarks, dtype="<f4")
        self.publish(FaceLandmarks(frame=f.index, shown_ns=f.shown_ns, shape=pts.shape, utterance_id=f.utterance_id,
                                   points=pts.tobytes(), mouth_open=f.mouth_open,
                                   audio_s=f.audio_s if f.utterance_id else 0.0))

    def _publish_stats(self) -> None:
        st = self.player.take_stats()
        s = self.settings
        self.counters.update(frames=st.frames, dropped_frames=st.dropped)
        self.publish(RendererStats(
            fps=round(st.fps, 2), av_offset_ms=round(st.av_offset_ms, 2) if st.av_offset_ms is not None else 0.0,
            dropped_frames=st.dropped, frames=st.frames, width=s.width, height=s.height,
            driver=self.driver_name or self.drivers.pick(False).name,
            av_offset_ms_p95=round(st.av_offset_ms_p95, 2) if st.av_offset_ms_p95 is not None else 0.0,
            render_ms=round(st.render_ms, 2), record_dropped=sum(getattr(x, "dropped", 0) for x in self.player.screens)))


main = RendererService.main
