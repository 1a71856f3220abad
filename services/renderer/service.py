"""The renderer service: the face on the screen, lip-synced to the voice, alive when idle.

A thin handler over the ``Face`` engine that ``face.build`` makes from the ``renderer`` section
(see ``face.py``): each handler receives, calls the face, publishes. ``voice.utterance`` becomes
a drive job run off the loop (``submit``) whose mouths go back to the face on the loop;
``voice.playback`` / ``voice.done`` / ``voice.stop`` steer it; ``vision.faces`` and
``hearing.speech`` steer idle life. The frame loop runs on one of the service's workers and
publishes ``face.landmarks`` for every frame it shows; ``renderer.stats`` goes out about once a
second.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future

from assistant.messages import (Done, Faces, Partial, Person, Playback, Received, Reply, Speaker, Speech, Stop, Transcript,
                                Utterance)
from assistant.service import Service, on

from .face import DriveJob, build, landmarks_message

log = logging.getLogger(__name__)


class RendererService(Service):
    """Show the lip-synced face."""

    name = "renderer"

    def setup(self) -> None:
        self.face = build(self.config, self._publish_frame, self.workers, self.resources)
        self.submit(self.face.drivers.warm_up)
        self.every(self.config.renderer.stats_period_s, self._publish_stats)

    def heartbeat_counters(self) -> dict[str, float]:
        return {**self.counters, **self.face.counters}

    # --- the kiosk page's running transcript ------------------------------------------------
    @on(Transcript, Partial, Reply)
    def on_words(self, rx: Received) -> None:
        msg = rx.msg
        reply = msg if isinstance(msg, Reply) else None
        self.face.on_words("assistant" if reply else "visitor", msg.text, isinstance(msg, Partial),
                           reply.track_id if reply else None)

    # --- voice ---------------------------------------------------------------------------
    @on(Utterance)
    def on_utterance(self, rx: Received) -> None:
        job = self.face.on_utterance(rx.msg)
        if job is not None:
            self.submit(job.run, then=lambda fut: self._driven(job, fut))

    def _driven(self, job: DriveJob, fut: Future) -> None:
        exc = fut.exception()
        self.face.on_driven(job, fut.result() if exc is None else None, exc)

    @on(Playback)
    def on_playback(self, rx: Received) -> None:
        self.face.on_playback(rx.msg)

    @on(Done)
    def on_done(self, rx: Received) -> None:
        self.face.on_done(rx.msg)

    @on(Stop)
    def on_stop(self, rx: Received) -> None:
        self.face.on_stop()

    # --- the visitor -----------------------------------------------------------------------
    @on(Faces)
    def on_faces(self, rx: Received) -> None:
        self.face.on_faces(rx.msg)

    @on(Speaker)
    def on_speaker(self, rx: Received) -> None:
        self.face.on_speaker(rx.msg.track_id)

    @on(Person)
    def on_person(self, rx: Received) -> None:
        if rx.msg.event == "left":
            self.face.on_person_left()

    @on(Speech)
    def on_speech(self, rx: Received) -> None:
        self.face.on_speech(rx.msg.event == "started")

    # --- out -------------------------------------------------------------------------------
    def _publish_frame(self, f) -> None:
        """Called on the frame worker for every shown frame (``publish`` is thread-safe)."""
        self.publish(landmarks_message(f))

    def _publish_stats(self) -> None:
        self.publish(self.face.stats())


main = RendererService.main
