"""The hearing service: owns the microphone, publishes speech edges, partials and transcripts.

A thin handler. ``setup`` builds from the ``hearing`` section: the STT engine, the playback
reference, the pipeline (echo canceller, endpointer, STT; ``pipeline.py``) running on one of the
service's workers, and the microphone whose thread feeds it; each goes on the exit stack as it
opens, so shutdown stops the microphone first, then the pipeline (what is queued is processed),
then closes the engine. Pipeline events become bus messages (on the pipeline's worker: publish
is thread-safe, ``count`` goes to the loop by itself); bus messages (played replies, stops,
phrases) become pipeline input.
"""

from __future__ import annotations

import logging
import time

from assistant.messages import Activity, Done, Partial, Phrases, Received, Speech, Stop, Transcript, Utterance, Word
from assistant.service import Service, on
from hardware.microphone import FileMicrophone, Microphone, MicrophoneError, PyAudioMicrophone

from .echo import PlaybackReference
from .pipeline import ActivityFrames, Event, Final, HearingPipeline, PartialText, SpeechEnded, SpeechStarted
from .stt import create_engine

log = logging.getLogger(__name__)


def make_microphone(s, config=None) -> Microphone:
    """The device ``hearing.mic_device`` names: the simulated twin for ``sim``, the kiosk page's
    browser microphone for ``web``, else PortAudio."""
    if s.mic_device == "web":
        from assistant.web import WebLimits, read_token, web_limits
        from hardware.microphone_web import WebMicrophone

        # The guards and the token of every web server (``[web]``, ``ops.token_file``).
        token = read_token(config.ops.token_file) if config is not None else ""
        limits = web_limits(config) if config is not None else WebLimits()
        return WebMicrophone(s.web_host, s.web_port, token=token, limits=limits, chunk_ms=s.mic_chunk_ms)
    if s.mic_device == "sim":
        leak = s.mic_sim_leak_db if s.mic_sim_speaker else None
        twin = dict(chunk_ms=s.mic_chunk_ms, start_at_ns=s.mic_start_at_ns, speaker_leak_db=leak,
                    cue_dir=s.mic_sim_cue_dir or None, device_node=s.mic_sim_device_node or None, retry_s=s.mic_retry_s)
        if not s.mic_file:
            return FileMicrophone(None, **twin)
        return FileMicrophone(s.mic_file, lead_s=s.mic_lead_s, **twin)
    return PyAudioMicrophone(s.mic_device, rate=s.mic_rate, channels=s.mic_channels, chunk_ms=s.mic_chunk_ms, retry_s=s.mic_retry_s)


class HearingService(Service):
    """Hearing: microphone, VAD endpointing, streaming STT, echo cancellation against the voice."""

    name = "hearing"

    def setup(self) -> None:
        s = self.config.hearing
        self.mic: Microphone | None = None
        self.engine = self.hold(create_engine(s))  # EngineError names the missing model and how to install one
        self.lang = s.lang or self.engine.lang
        partials = getattr(self.engine, "partials", None)
        self.partial_engine = partials.name if partials is not None else ""
        self.reference = PlaybackReference(tail_ms=s.playback_tail_ms)
        self.pipeline = HearingPipeline(s, self.engine, self._on_event, reference=self.reference, workers=self.workers)
        if s.phrases:
            self.pipeline.set_phrases(list(s.phrases))
        self.pipeline.start()
        self.hold(self.pipeline, self.pipeline.stop)  # closed before the engine it decodes with
        try:
            mic = make_microphone(s, self.config)
        except MicrophoneError as exc:
            # A broken file or a missing driver: say so and keep the service (and the rest) running.
            self.count("mic_errors")
            log.error("microphone unusable: %s", exc)
            return
        # On the stack as soon as it exists (the browser microphone has bound its port): stopped first at
        # shutdown, so no chunk arrives after the pipeline's last; stopping one that never started is harmless.
        self.mic = self.hold(mic, mic.stop)
        mic.on_text = self._typed  # the kiosk page's text box: a typed line is a transcript
        mic.start(self.pipeline.push)
        log.info("hearing with %s on %s", self.engine.name, s.mic_device if s.mic_device != "sim" else f"sim:{s.mic_file or 'silence'}")

    def heartbeat_counters(self) -> dict[str, float]:
        st = self.pipeline.snapshot  # the worker's copy: the loop never reads what the worker is writing
        lat = sorted(st.latencies_ms)
        self.counters.update(
            audio_s=round(st.audio_s, 2), utterances=st.utterances, rtf=round(st.rtf, 3),
            pipeline_load=round(st.process_s / st.audio_s, 3) if st.audio_s else 0.0,
            final_latency_ms_p50=round(lat[len(lat) // 2], 1) if lat else 0.0,
            dropped_chunks=st.dropped_chunks, audio_gaps=st.gaps,
        )
        if self.mic is not None:
            self.counters.update(mic_reopens=self.mic.reopens, mic_errors=self.mic.errors, mic_available=int(self.mic.available))
            self.counters.update(getattr(self.mic, "counters", {}))  # the browser microphone's jitter buffer
        else:
            self.counters["mic_available"] = 0
        return self.counters

    # --- pipeline -> bus (on the pipeline's worker: publish is thread-safe, count goes to the loop) ---
    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, ActivityFrames):
            self.publish(Activity(t0_ns=ev.t0_ns, frame_ms=ev.frame_ms, energy_db=ev.energy_db, voiced=ev.voiced))
        elif isinstance(ev, SpeechStarted):
            if ev.during_playback:
                self.count("barge_in")
            self.publish(Speech(event="started", at_ns=ev.at_ns, during_playback=ev.during_playback), turn=ev.turn)
        elif isinstance(ev, SpeechEnded):
            self.publish(Speech(event="ended", at_ns=ev.at_ns), turn=ev.turn)
        elif isinstance(ev, PartialText):
            self.publish(Partial(text=ev.text, engine=self.partial_engine or self.engine.name), turn=ev.turn)
        elif isinstance(ev, Final):
            rejected = ev.rejected
            if rejected:
                self.count("rejected_transcripts")  # invented by the final pass on noise, breath or silence
            if ev.reason == "long_pause":
                self.count("unfinished_turns_waited")
            elif ev.reason == "doubt_pause":
                self.count("doubtful_turns_waited")
            if ev.tentative:
                self.count("tentative_ends")  # the voice still up at the pause, or a doubted sentence: the answer waits longer
            if ev.revision:
                self.count("turns_continued")  # the same turn id again: the brain answers this text instead
            t0 = ev.audio_t0_ns
            words = [Word(w.text, t0 + int(w.start_s * 1e9), t0 + int(w.end_s * 1e9), w.confidence) for w in ev.result.words]
            self.publish(Transcript(text=ev.result.text, confidence=ev.result.confidence, engine=self.engine.name,
                                    speech_start_ns=ev.speech_start_ns, speech_end_ns=ev.speech_end_ns, words=words,
                                    lang=self.lang, partial_engine=self.partial_engine, end_reason=ev.reason,
                                    rejected=rejected, end_tentative=ev.tentative), turn=ev.turn)
            # A visitor's words only at DEBUG (privacy); the timing at INFO.
            log.info("heard %d word(s) (%.0f ms after the end of speech, rtf %.2f)", len(ev.result.text.split()),
                     (time.monotonic_ns() - ev.speech_end_ns) / 1e6, ev.stt_s / ev.audio_s if ev.audio_s else 0.0)
            log.debug("heard %r", ev.result.text)

    def _typed(self, text: str) -> None:
        now = time.monotonic_ns()
        self.publish(Transcript(text=text, confidence=1.0, engine="typed", speech_start_ns=now, speech_end_ns=now, lang=self.lang),
                     turn=f"typed-{now:x}")
        log.info("typed: %d characters", len(text))

    # --- bus -> pipeline -------------------------------------------------------------------
    @on(Utterance)
    def handle_utterance(self, rx: Received) -> None:
        u = rx.msg
        try:
            pcm16k = self.reference.add(u.utterance_id, u.pcm, u.sample_rate, u.play_at_ns)
        except ValueError as exc:
            self.count("bad_utterances")
            log.warning("echo reference ignored: %s", exc)
            return
        if self.mic is not None:
            self.mic.speaker_play(pcm16k, u.play_at_ns)  # only the simulated room hears its speaker

    @on(Stop)
    def handle_stop(self, rx: Received) -> None:
        now = time.monotonic_ns()
        self.reference.cut(now)
        if self.mic is not None:
            self.mic.speaker_stop(now)

    @on(Done)
    def handle_done(self, rx: Received) -> None:
        if rx.msg.status != "finished":
            self.reference.cut(rx.header.ts_ns, rx.msg.utterance_id)

    @on(Phrases)
    def handle_phrases(self, rx: Received) -> None:
        self.pipeline.set_phrases(list(rx.msg.phrases))


main = HearingService.main
