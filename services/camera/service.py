"""The camera service on the bus: a capture worker feeds frames to the pipeline and publishes
``vision.faces`` (at ``faces_hz``), ``vision.person`` events, ``vision.speaker`` (who is speaking, from
``hearing.activity``), ``vision.exposure`` and a low-rate
``vision.preview``. A camera that vanishes is reopened with backoff; bad frames are counted and
skipped. ``Command(service="camera", command="enroll", args={"name": NAME})`` enrols the engaged
face from the live camera.

A thin handler over ``Capture`` (``capture.py``: the camera, the pipeline, the loop and the
messages each frame makes), which runs on one of the service's workers and publishes from there
(``publish`` is thread-safe); its counters reach the loop through ``call_soon``.
"""

from __future__ import annotations

import logging
import time

import msgspec

from assistant.messages import Activity, Command, Received
from assistant.service import Service, SetupError, on
from hardware.camera import CameraError, open_camera

from .capture import Capture

log = logging.getLogger(__name__)


class CameraService(Service):
    """Camera: faces, people, recognition and face-priority exposure."""

    name = "camera"

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one core for the pipeline; the other serves recognition and the rest
        settings = s = self.config.camera
        try:
            camera = open_camera(s)  # not opened yet: a camera not plugged in is waited for
        except CameraError as exc:
            raise SetupError(f"camera.device {s.device!r}: {exc}") from None
        self.recognizer = None
        try:
            from .recognition import Gallery, Recognizer

            self.recognizer = Recognizer(Gallery(s.gallery_dir), s.match_threshold)
            log.info("recognition on: %d people enrolled in %s", len(self.recognizer.gallery.people), s.gallery_dir)
        except Exception as exc:  # noqa: BLE001 - faces and exposure still work without it
            log.warning("recognition off: %s", exc)
        mouths = None
        if s.speaker_detection:
            from .speaker import shared_reader

            try:
                mouths = shared_reader()  # here, not on the capture worker: loading holds the GIL for seconds
            except RuntimeError as exc:
                log.warning("who-is-speaking off: %s", exc)
                settings = msgspec.structs.replace(s, speaker_detection=False)
        self.capture = Capture(settings, camera, self.recognizer, mouths)
        self.hold(self.capture)  # closed after the capture worker (started next) has ended
        self._capture_counters: dict[str, float] = {"camera_available": 0}
        self._counters_sent = 0.0
        self.start_worker("capture", self.capture.run, self.workers.stopping, self.publish, self._hand_counters)

    def _hand_counters(self) -> None:
        """On the capture worker: its counters to the loop (twice a second), never read across threads."""
        now = time.monotonic()
        if now - self._counters_sent >= 0.5 or self.workers.stopping.is_set():
            self._counters_sent = now
            snapshot = self.capture.snapshot()
            self.call_soon(lambda: self._capture_counters.update(snapshot))

    def heartbeat_counters(self) -> dict[str, float]:
        return {**self.counters, **self._capture_counters}

    @on(Activity)
    def handle_activity(self, rx: Received) -> None:
        """The microphone's level and VAD, for who-is-speaking (queued; the capture worker reads it)."""
        a = rx.msg
        assert isinstance(a, Activity)
        self.count("activity_batches")
        pipeline = self.capture.pipeline
        if pipeline is not None and pipeline.speaker is not None:
            pipeline.speaker.add_audio(a.t0_ns, a.frame_ms, a.energy_db, a.voiced)

    @on(Command)
    def handle_command(self, rx: Received) -> None:
        cmd = rx.msg
        assert isinstance(cmd, Command)
        if cmd.service == self.name and cmd.command == "enroll":
            pipeline = self.capture.pipeline
            if pipeline is None:
                log.warning("enroll: the camera is not delivering frames")
                return
            try:
                pipeline.enroll_live(cmd.args.get("name", ""), int(cmd.args.get("samples", "5")))
                log.info("enrolling %s from the live camera", cmd.args.get("name"))
            except (ValueError, RuntimeError) as exc:
                log.warning("enroll refused: %s", exc)
            return
        if cmd.service == self.name and cmd.command == "forget":
            # ``assistant forget NAME`` removed the file; drop the face from memory too (a new
            # dict, swapped in whole: the recognition worker reads the old one meanwhile).
            if self.recognizer is not None:
                key = " ".join(cmd.args.get("name", "").replace("_", " ").lower().split())
                gallery = self.recognizer.gallery
                gallery.people = {n: e for n, e in gallery.people.items() if " ".join(n.replace("_", " ").lower().split()) != key}
                log.info("forgot a face on the operator's request (%d people enrolled)", len(gallery.people))
            return
        self._on_command(rx)

main = CameraService.main

if __name__ == "__main__":
    raise SystemExit(main())
