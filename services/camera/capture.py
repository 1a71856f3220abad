"""The camera's capture loop, without the bus: read frames, run the pipeline, return the messages.

``Capture`` owns the camera device and the ``CameraPipeline`` fed from it. ``run`` is the loop
the service starts on one of its workers: it opens the camera (waiting for one that is not
plugged in, with back-off), reads frames, and hands the messages each frame produced
(``messages``: faces at ``faces_hz``, person events, the speaker, exposure, a low-rate preview)
to ``publish``. A camera that vanishes is reopened; bad frames are counted and skipped.

Its counters and the camera's state are written only by the capture worker; ``snapshot`` copies
them there, for the service to hand to the loop (``call_soon``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from assistant.config import CameraSettings
from assistant.backoff import Backoff
from assistant.messages import Exposure, Faces, Message, Preview
from hardware.camera import Camera, CameraError

from .pipeline import CameraPipeline, Result, preview_jpeg
from .recognition import Recognizer
from .speaker import MouthReader

log = logging.getLogger(__name__)
_REOPEN_BACKOFF_S = (0.5, 1.0)  # seconds between tries to open a missing camera


class Capture:
    """Camera -> pipeline -> messages, on the capture worker."""

    def __init__(self, settings: CameraSettings, camera: Camera, recognizer: Recognizer | None = None,
                 mouths: MouthReader | None = None) -> None:
        self.settings, self.camera, self.recognizer, self.mouths = settings, camera, recognizer, mouths
        self.pipeline: CameraPipeline | None = None
        self.counters: dict[str, float] = {}
        self.camera_open = False
        self._size = (0, 0)
        self._last = {"faces": 0.0, "exposure": 0.0, "preview": 0.0, "problem": 0.0}

    def _count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def snapshot(self) -> dict[str, float]:
        """The capture's counters now (call on the capture worker: it is their only writer)."""
        out = dict(self.counters, camera_available=int(self.camera_open))
        if self.pipeline is not None:
            out.update(self.pipeline.counters)
        return out

    def close(self) -> None:
        """Close the pipeline and the camera (after the capture loop has ended)."""
        if self.pipeline is not None:
            self.pipeline.close()
        self.camera.close()

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

    def run(self, stopping: threading.Event, publish: Callable[[Message], None],
            each_frame: Callable[[], None] = lambda: None) -> None:
        """Capture until ``stopping`` is set; ``each_frame`` runs after every attempt (counters out)."""
        # Opening a missing device costs nothing: notice it back soon.
        reopen, warned = Backoff(_REOPEN_BACKOFF_S), False
        while not stopping.is_set():
            each_frame()
            if not self.camera_open:
                try:
                    self._open()
                    self.camera_open = True
                    reopen.reset()
                    self._count("camera_opened")
                    log.info("camera open: %dx%d at %g fps", self.camera.width, self.camera.height, self.camera.fps)
                    warned = False
                except CameraError as exc:
                    if not warned:
                        log.warning("camera unavailable: %s; retrying", exc)
                        warned = True
                    self._count("camera_open_failures")
                    stopping.wait(reopen.next())
                    continue
            try:
                frame = self.camera.read()
            except CameraError as exc:
                log.warning("camera lost: %s", exc)
                self._count("camera_lost")
                self.camera.close()
                self.camera_open = False
                if self.pipeline is not None:
                    for ev in self.pipeline.reset():
                        publish(ev)
                continue
            except Exception:  # noqa: BLE001 - a driver hiccup is not a reason to stop
                self._count("read_errors")
                log.exception("camera read failed")
                stopping.wait(0.05)
                continue
            try:
                for msg in self.messages(frame, self.pipeline.process(frame)):  # type: ignore[union-attr]
                    publish(msg)
            except Exception:  # noqa: BLE001 - one frame must never stop the camera
                self._count("frame_errors")
                log.exception("frame %d failed", frame.index)
        each_frame()

    def messages(self, frame, result: Result) -> list[Message]:
        """What to publish for one processed frame (and the exposure it asks for, set on the camera)."""
        now = time.monotonic()
        s = self.settings
        out: list[Message] = []
        if result.problem:
            if now - self._last["problem"] > 5.0:
                log.warning("skipping bad frame: %s", result.problem)
                self._last["problem"] = now
            return out
        exp = result.exposure
        if exp is not None and exp.changed:
            self.camera.set_exposure(exp.exposure_s, exp.gain)
        out.extend(result.events)
        if result.speaker is not None:
            out.append(result.speaker)
        if now - self._last["faces"] >= 1.0 / max(s.faces_hz, 1.0) - 0.002:
            self._last["faces"] = now
            out.append(Faces(frame_ns=result.frame_ns, width=result.width, height=result.height, faces=result.faces))
        if (exp is not None and exp.changed) or now - self._last["exposure"] >= 0.5:
            self._last["exposure"] = now
            if exp is not None:
                out.append(Exposure(exposure=float(exp.exposure_s), gain=float(exp.gain), metered_luminance=round(float(exp.metered), 1),
                                    target_luminance=float(exp.target), mode=exp.mode))  # type: ignore[arg-type]
            else:
                out.append(Exposure(exposure=float(frame.exposure_s or s.manual_exposure_s), gain=float(frame.gain or s.manual_gain),
                                    metered_luminance=0.0, target_luminance=s.target_luminance,
                                    mode="camera" if s.ae_mode == "camera" else "manual"))
        if s.preview_every_s > 0 and now - self._last["preview"] >= s.preview_every_s:
            self._last["preview"] = now
            out.append(Preview(frame_ns=result.frame_ns, jpeg=preview_jpeg(frame.image, result, s.preview_width)))
        return out
