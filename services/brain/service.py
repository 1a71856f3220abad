"""The brain on the bus: receive, call the conversation engine, publish what it returns."""

from __future__ import annotations

import logging
import os
import sqlite3
from concurrent.futures import Future
from pathlib import Path

from assistant import paths
from assistant.config.schema import BrainSettings
from assistant.messages import (
    Done, EmailFailed, EmailReceived, EmailSent, FaceLandmarks, Person, Received, Speaker, Speech, SystemState,
    Transcript, Utterance, VoiceError,
)
from assistant.service import Service, SetupError, on

from .conversation import Brain, Job, Out
from .mailstore import MailStore

log = logging.getLogger(__name__)

SAMPLE_KNOWLEDGE = paths.package_file("services.brain", "knowledge.toml")
_TICK_S = 0.05


def store_path(settings: BrainSettings) -> Path:
    """Where the mail store lives (see ``BrainSettings.store_path``)."""
    return paths.under_state(settings.store_path, "brain.sqlite")


def load_knowledge(settings: BrainSettings):
    """The knowledge base, or ``None`` (logged clearly) when the model or the file is unusable: the kiosk still runs."""
    from .embedder import EmbedderUnavailable, SentenceEmbedder
    from .knowledge import KnowledgeBase, KnowledgeError

    path = Path(settings.knowledge_file) if settings.knowledge_file else SAMPLE_KNOWLEDGE
    try:
        return KnowledgeBase.from_file(path, SentenceEmbedder(), settings.knowledge_threshold)
    except (EmbedderUnavailable, KnowledgeError) as exc:
        log.error("knowledge base off: %s", exc)
        return None


class BrainService(Service):
    """The conversation: who is here, what they said, what to answer, what to send."""

    name = "brain"

    def setup(self) -> None:
        s = self.config.brain
        path = store_path(s)
        try:
            # A full disk or a locked file: degraded and retried (a damaged file is moved aside).
            self.store = self.hold(self.until_available(lambda: MailStore(path)))
        except (OSError, sqlite3.Error) as exc:
            raise SetupError(f"brain.store_path: cannot use {path} as the mail store ({type(exc).__name__}: {exc}); "
                             "point it at a writable file") from None
        kb = load_knowledge(s)
        if kb is None:
            self.count("knowledge_off")
        chat = None
        if s.chat_url:
            from .chat import ChatClient

            key = os.environ.get(s.chat_api_key_env, "") if s.chat_api_key_env else ""
            chat = ChatClient(s.chat_url, s.chat_model, s.chat_timeout_s, key, s.name)
        self.brain = Brain(s, self.store, kb, chat)
        self.every(_TICK_S, lambda: self.emit(self.brain.tick()))
        self.every(s.phrases_every_s, lambda: self.emit([self.brain.phrases()]), first_in=0)
        self.every(s.outbox_retry_s, lambda: self.emit(self.brain.outbox()), first_in=0)
        self.every(min(3600.0, s.mail_retention_s / 4), self._purge, first_in=0)
        self._store_seen = (0.0, 0.0)  # store errors and stored mail at the last health check
        self.every(self.config.service.heartbeat_s, self._store_health)

    def _store_health(self) -> None:
        """``degraded`` while mail cannot be written (disk full, locked; the email service redelivers
        it), ``ready`` again once a write succeeds."""
        c = self.brain.counters
        errors, stored = c.get("store_errors", 0), c.get("mail_stored", 0) + c.get("mail_redelivered", 0)
        last_errors, last_stored = self._store_seen
        self._store_seen = (errors, stored)
        if errors > last_errors and self.state == "ready":
            self._set_state("degraded", "the mail store cannot be written (disk full or locked); mail waits in the mailbox")
        elif stored > last_stored and errors == last_errors and self.state == "degraded":
            log.info("the mail store can be written again")
            self._set_state("ready")

    def _purge(self) -> None:
        """Retention: mail older than ``brain.mail_retention_s`` leaves the store."""
        try:
            n = self.store.purge(self.config.brain.mail_retention_s)
        except sqlite3.Error as exc:
            log.warning("mail retention: %s; trying again later", exc)
            return
        if n:
            self.count("mail_purged", n)
            log.info("mail retention: deleted %d stored mail(s) older than %.0f days", n, self.config.brain.mail_retention_s / 86400)

    def heartbeat_counters(self) -> dict[str, float]:
        brain = getattr(self, "brain", None)  # heartbeats run while a store is awaited, before the brain exists
        return {**self.counters, **(brain.counters if brain else {})}

    def emit(self, outs: list) -> None:
        for item in outs:
            if isinstance(item, Job):
                self.submit(self.brain.think, item, then=lambda fut, job=item: self._answered(job, fut))
            else:
                assert isinstance(item, Out)
                self.publish(item.msg, turn=item.turn)

    def _answered(self, job: Job, fut: Future) -> None:
        exc = fut.exception()
        self.emit(self.brain.on_answer(job, fut.result()) if exc is None else self.brain.on_answer_failed(job, exc))

    # --- handlers (named on_* so they never shadow Service attributes such as ``state``) -------
    @on(Person)
    def on_person(self, rx: Received) -> None:
        m = rx.msg
        self.emit(self.brain.on_person(m.event, m.track_id, m.identity))

    @on(Speech)
    def on_speech(self, rx: Received) -> None:
        if rx.msg.event == "started":
            self.emit(self.brain.on_speech_started(rx.msg.during_playback))

    @on(Transcript)
    def on_transcript(self, rx: Received) -> None:
        m = rx.msg
        turn = rx.header.turn or f"turn-{rx.header.source}-{rx.header.seq}"
        self.emit(self.brain.on_transcript(turn, m.text, m.confidence, m.speech_end_ns, rx.header.ts_ns, m.speech_start_ns,
                                           m.end_tentative))

    @on(Speaker)
    def on_speaker(self, rx: Received) -> None:
        self.emit(self.brain.on_speaker(rx.msg.track_id, rx.msg.since_ns))

    @on(Utterance)
    def on_utterance(self, rx: Received) -> None:
        self.brain.on_utterance(rx.msg.say_id, rx.msg.utterance_id, rx.msg.play_at_ns)

    @on(FaceLandmarks)
    def on_landmarks(self, rx: Received) -> None:
        if rx.msg.utterance_id:
            self.emit(self.brain.on_mouth(rx.msg.utterance_id, rx.msg.shown_ns))

    @on(Done)
    def on_voice_done(self, rx: Received) -> None:
        self.brain.on_voice_done(rx.msg.say_id, rx.msg.status, rx.msg.last)

    @on(VoiceError)
    def on_voice_error(self, rx: Received) -> None:
        self.brain.on_voice_done(rx.msg.say_id, "failed", True)

    @on(EmailReceived)
    def on_email_received(self, rx: Received) -> None:
        self.emit(self.brain.on_email(rx.msg))

    @on(EmailSent)
    def on_email_sent(self, rx: Received) -> None:
        self.emit(self.brain.on_email_result(rx.msg.send_id, True))

    @on(EmailFailed)
    def on_email_failed(self, rx: Received) -> None:
        self.emit(self.brain.on_email_result(rx.msg.send_id, False, rx.msg.error, rx.msg.permanent))

    @on(SystemState)
    def on_service_state(self, rx: Received) -> None:
        # The STT may start after us and would miss the phrase list published at our start.
        if rx.msg.service == "hearing" and rx.msg.state == "ready":
            self.emit([self.brain.phrases()])


main = BrainService.main

if __name__ == "__main__":
    raise SystemExit(main())
