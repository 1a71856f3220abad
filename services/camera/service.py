"""The camera service on the bus: a capture thread feeds frames to the pipeline and publishes
``vision.faces`` (at ``faces_hz``), ``vision.person`` events, ``vision.speaker`` (who is speaking, from
``hearing.activity``), ``vision.exposure`` and a low-rate
``vision.preview``. A camera that vanishes is reopened with backoff; bad frames are counted and
skipped. ``Command(service="camera", command="enroll", args={"name": NAME})`` enrols the engaged
face from the live camera.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec

from assistant.backoff import Backoff
from assistant.messages import Activity, Command, Exposure, Faces, Preview, Received
from assistant.service import Service, SetupError, on
from hardware.camera import CameraError, open_camera

from .pipeline import CameraPipeline, Result, preview_jpeg

log = logging.getLogger(__name__)
_REOPEN_BACKOFF_S = (0.5, 1.0)  # seconds between tries to open a missing camera


class CameraService(Service):
    """Camera: faces, people, recognition and face-priority exposure."""

    name = "camera"

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one core for the pipeline; the other serves recognition and the rest
        s = self.config.camera
        self.settings = s
        try:
            self.camera = open_camera(s)  # not opened yet: a camera not plugged in is waited for
        except CameraError as exc:
            raise SetupError(f"camera.device {s.device!r}: {exc}") from None
        self._camera_open = False
        self.recognizer = None
        try:
            from .recognition import Gallery, Recognizer

            self.recognizer = Recognizer(Gallery(s.gallery_dir), s.match_threshold)
            log.info("recognition on: %d people enrolled in %s", len(self.recognizer.gallery.people), s.gallery_dir)
        except Exception as exc:  # noqa: BLE001 - faces and exposure still work without it
            log.warning("recognition off: %s", exc)
        self.mouths = None
        if s.speaker_detection:
            from .speaker import shared_reader

            try:
                self.mouths = shared_reader()  # here, not on the capture thread: loading holds the GIL for seconds
            except RuntimeError as exc:
                log.warning("who-is-speaking off: %s", exc)
                self.settings = msgspec.structs.replace(s, speaker_detection=False)
        self.pipeline: CameraPipeline | None = None
        self._last = {"faces": 0.0, "exposure": 0.0, "preview": 0.0, "problem": 0.0}
        self._thread = threading.Thread(target=self._capture, name="capture", daemon=True)
        self._thread.start()

    def teardown(self) -> None:
        self.stop()
        if hasattr(self, "_thread"):
            self._thread.join(timeout=2.0)
        if getattr(self, "pipeline", None) is not None:
            self.pipeline.close()
        if hasattr(self, "camera"):
            self.camera.close()

    def heartbeat_counters(self) -> dict[str, float]:
        out = dict(self.counters, camera_available=int(self._camera_open))
        if self.pipeline is not None:
            out.update(self.pipeline.counters)
        return out

    @on(Activity)
    def handle_activity(self, rx: Received) -> None:
        """The microphone's level and VAD, for who-is-speaking (queued; the capture thread reads it)."""
        a = rx.msg
        assert isinstance(a, Activity)
        self.count("activity_batches")
        if self.pipeline is not None and self.pipeline.speaker is not None:
            self.pipeline.speaker.add_audio(a.t0_ns, a.frame_ms, a.energy_db, a.voiced)

    @on(Command)
    def handle_command(self, rx: Received) -> None:
        cmd = rx.msg
        assert isinstance(cmd, Command)
        if cmd.service == self.name and cmd.command == "enroll":
            if self.pipeline is None:
                log.warning("enroll: the camera is not delivering frames")
                return
            try:
                self.pipeline.enroll_live(cmd.args.get("name", ""), int(cmd.args.get("samples", "5")))
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

    # --- capture thread ----------------------------------------------------------------------
    def _open(self) -> None:
        cam, s = self.camera, self.settings
        cam.open()
        if self.pipeline is None or self._size != (cam.width, cam.height):
            if self.pipeline is not None:
                self.pipeline.close()
            self.pipeline = CameraPipeline(s, cam.limits, width=cam.width, height=cam.height, recognizer=self.recognizer,
                                           mouths=self.mouths)
            self._size = (cam.width, cam.height)
        cam.set_auto(s.ae_mode == "camera")
        if s.ae_mode == "manual":
            cam.set_exposure(s.manual_exposure_s, s.manual_gain)
        elif s.ae_mode != "camera":
            cam.set_exposure(self.pipeline.exposure.exposure_s, self.pipeline.exposure.gain)

    def _capture(self) -> None:
        # Opening a missing device costs nothing: notice it back soon.
        reopen, warned = Backoff(_REOPEN_BACKOFF_S), False
        while not self.stopping:
            if not self._camera_open:
                try:
                    self._open()
                    self._camera_open = True
                    reopen.reset()
                    self.count("camera_opened")
                    log.info("camera open: %dx%d at %g fps", self.camera.width, self.camera.height, self.camera.fps)
                    warned = False
                except CameraError as exc:
                    if not warned:
                        log.warning("camera unavailable: %s; retrying", exc)
                        warned = True
                    self.count("camera_open_failures")
                    self._stop.wait(reopen.next())
                    continue
            try:
                frame = self.camera.read()
            except CameraError as exc:
                log.warning("camera lost: %s", exc)
                self.count("camera_lost")
                self.camera.close()
                self._camera_open = False
                if self.pipeline is not None:
                    for ev in self.pipeline.reset():
                        self.publish(ev)
                continue
            except Exception:  # noqa: BLE001 - a driver hiccup is not a reason to stop
                self.count("read_errors")
                log.exception("camera read failed")
                self._stop.wait(0.05)
                continue
            try:
                self._publish(frame, self.pipeline.process(frame))  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - one frame must never stop the camera
                self.count("frame_errors")
                log.exception("frame %d failed", frame.index)

    def _publish(self, frame, result: Result) -> None:
        now = time.monotonic()
        s = self.settings
        if result.problem:
            if now - self._last["problem"] > 5.0:
                log.warning("skipping bad frame: %s", result.problem)
                self._last["problem"] = now
            return
        exp = result.exposure
        if exp is not None and exp.changed:
            self.camera.set_exposure(exp.exposure_s, exp.gain)
        for ev in result.events:
            self.publish(ev)
        if result.speaker is not None:
            self.publish(result.speaker)
        if now - self._last["faces"] >= 1.0 / max(s.faces_hz, 1.0) - 0.002:
            self._last["faces"] = now
            self.publish(Faces(frame_ns=result.frame_ns, width=result.width, height=result.height, faces=result.faces))
        if (exp is not None and exp.changed) or now - self._last["exposure"] >= 0.5:
            self._last["exposure"] = now
            if exp is not None:
                msg = Exposure(exposure=float(exp.exposure_s), gain=float(exp.gain), metered_luminance=round(float(exp.metered), 1), target_luminance=float(exp.target), mode=exp.mode)  # type: ignore[arg-type]
            else:
                msg = Exposure(exposure=float(frame.exposure_s or s.manual_exposure_s), gain=float(frame.gain or s.manual_gain), metered_luminance=0.0,
                               target_luminance=s.target_luminance, mode="camera" if s.ae_mode == "camera" else "manual")
            self.publish(msg)
        if s.preview_every_s > 0 and now - self._last["preview"] >= s.preview_every_s:
            self._last["preview"] = now
            self.publish(Preview(frame_ns=result.frame_ns, jpeg=preview_jpeg(frame.image, result, s.preview_width)))


main = CameraService.main

if __name__ == "__main__":
    raise SystemExit(main())
