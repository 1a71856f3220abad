"""What the status page shows, kept up to date from bus messages. Plain class, no ZeroMQ.

The service loop feeds ``ingest``; the web server's threads read ``snapshot``, ``metrics`` and
``preview`` at the same time, hence the lock.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from assistant.messages import (Exposure, FaceLandmarks, Faces, Heartbeat, Preview, Received, RendererStats, Reply,
                                 SystemState, Transcript, TurnTrace)

#: Message types the board reads.
WATCHED = (Heartbeat, SystemState, Transcript, Reply, TurnTrace, Preview, Faces, Exposure, FaceLandmarks, RendererStats)

#: device -> (service, heartbeat counter that is 1 while the device is there)
DEVICES = {"camera": ("camera", "camera_available"), "microphone": ("hearing", "mic_available"),
           "speaker": ("voice", "speaker_available")}

_STAGES = (("transcript", "transcript_ns"), ("reply", "reply_ns"), ("first_sound", "first_sound_ns"), ("first_mouth", "first_mouth_ns"))


@dataclass
class ServiceView:
    name: str
    state: str = "unknown"
    pid: int = 0
    started_ns: int = 0
    last_beat_ns: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    restarts: int = 0
    detail: str = ""


class StatusBoard:
    """Latest state of every service, the conversation, the camera and the face."""

    def __init__(self, history: int = 20, stale_after_s: float = 3.0) -> None:
        self.stale_ns = int(stale_after_s * 1e9)
        self._lock = threading.Lock()
        self.services: dict[str, ServiceView] = {}
        self.transcripts: collections.deque[dict] = collections.deque(maxlen=history)
        self.replies: collections.deque[dict] = collections.deque(maxlen=history)
        self.turns: collections.deque[dict] = collections.deque(maxlen=history)
        self.turns_total = 0
        self._preview: tuple[int, bytes] | None = None
        self._faces: Faces | None = None
        self._exposure: Exposure | None = None
        self._landmarks: tuple[FaceLandmarks, list[list[float]]] | None = None
        self._renderer: RendererStats | None = None
        self.ingested = 0

    # --- from the loop ------------------------------------------------------------------
    def ingest(self, rx: Received, now_ns: int | None = None) -> None:
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        msg, h = rx.msg, rx.header
        with self._lock:
            self.ingested += 1
            if isinstance(msg, Heartbeat):
                view = self._service(msg.service)
                if view.pid and msg.pid != view.pid:
                    view.restarts += 1
                view.pid, view.started_ns, view.last_beat_ns = msg.pid, msg.started_ns, now_ns
                view.state, view.counters = msg.state, dict(msg.counters)
            elif isinstance(msg, SystemState):
                view = self._service(msg.service)
                if view.pid and msg.pid != view.pid and msg.state == "starting":
                    view.restarts += 1
                    view.pid = msg.pid
                view.state, view.detail = msg.state, msg.detail
            elif isinstance(msg, Transcript):
                self.transcripts.append({"at_ns": h.ts_ns, "turn": h.turn, "text": msg.text, "confidence": round(msg.confidence, 3)})
            elif isinstance(msg, Reply):
                self.replies.append({"at_ns": h.ts_ns, "turn": h.turn, "text": msg.text, "skill": msg.skill, "person": msg.person})
            elif isinstance(msg, TurnTrace):
                self._trace(msg, h.turn)
            elif isinstance(msg, Preview):
                self._preview = (msg.frame_ns, msg.jpeg)
            elif isinstance(msg, Faces):
                self._faces = msg
            elif isinstance(msg, Exposure):
                self._exposure = msg
            elif isinstance(msg, FaceLandmarks):
                self._landmarks = (msg, _points(msg))
            elif isinstance(msg, RendererStats):
                self._renderer = msg

    def _service(self, name: str) -> ServiceView:
        view = self.services.get(name)
        if view is None:
            view = self.services[name] = ServiceView(name)
        return view

    def _trace(self, t: TurnTrace, turn: str) -> None:
        """Latency of each stage from the end of the visitor's speech, in ms (None: did not happen)."""
        self.turns_total += 1
        row: dict[str, Any] = {"turn": turn}
        for stage, attr in _STAGES:
            at = getattr(t, attr)
            row[stage] = round((at - t.speech_end_ns) / 1e6, 1) if at and t.speech_end_ns else None
        self.turns.append(row)

    # --- from the web server's threads ----------------------------------------------------
    def preview(self) -> bytes | None:
        with self._lock:
            return self._preview[1] if self._preview else None

    def snapshot(self, now_ns: int | None = None) -> dict[str, Any]:
        """Everything the page shows, as JSON-able data."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            services = [self._service_row(v, now_ns) for v in sorted(self.services.values(), key=lambda v: v.name)]
            camera: dict[str, Any] = {"preview_ns": self._preview[0] if self._preview else 0}
            if self._faces is not None:
                f = self._faces
                camera.update(width=f.width, height=f.height, faces=[
                    {"box": list(x.box), "identity": x.identity, "engaged": x.engaged, "distance_m": round(x.distance_m, 2), "luminance": round(x.luminance, 1)}
                    for x in f.faces])
            if self._exposure is not None:
                e = self._exposure
                camera["exposure"] = {"exposure": e.exposure, "gain": round(e.gain, 2), "metered": round(e.metered_luminance, 1),
                                      "target": e.target_luminance, "mode": e.mode}
            face: dict[str, Any] = {}
            if self._landmarks is not None:
                lm, pts = self._landmarks
                face = {"frame": lm.frame, "speaking": bool(lm.utterance_id), "mouth_open": round(lm.mouth_open, 3), "points": pts}
            if self._renderer is not None:
                r = self._renderer
                face.update(width=r.width, height=r.height, fps=round(r.fps, 1), av_offset_ms=round(r.av_offset_ms, 1), dropped=r.dropped_frames, driver=r.driver)
            devices: dict[str, bool | None] = {}
            for device, (service, counter) in DEVICES.items():
                row = next((r for r in services if r["name"] == service), None)
                value = row["counters"].get(counter) if row and row["up"] else None
                devices[device] = None if value is None else bool(value)  # None: unknown (its service is not up)
            return {
                "services": services,
                "devices": devices,
                "transcripts": list(self.transcripts)[::-1],
                "replies": list(self.replies)[::-1],
                "turns": list(self.turns)[::-1],
                "camera": camera,
                "face": face,
            }

    def _service_row(self, v: ServiceView, now_ns: int) -> dict[str, Any]:
        age = (now_ns - v.last_beat_ns) / 1e9 if v.last_beat_ns else None
        up = age is not None and age * 1e9 <= self.stale_ns
        state = v.state if up or v.state in ("stopped", "failed") else "down"
        return {"name": v.name, "state": state, "up": up, "pid": v.pid, "restarts": v.restarts, "detail": v.detail,
                "uptime_s": round((now_ns - v.started_ns) / 1e9, 1) if v.started_ns and up else None,
                "heartbeat_age_s": round(age, 1) if age is not None else None, "counters": v.counters}

    def metrics(self, now_ns: int | None = None) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        snap = self.snapshot(now_ns)
        out = _Exposition()
        for row in snap["services"]:
            labels = {"service": row["name"]}
            out.add("assistant_service_up", "1 when the service's heartbeat is fresh", "gauge", labels, row["up"])
            out.add("assistant_service_ready", "1 when the service reports the ready state", "gauge", labels, row["state"] == "ready")
            out.add("assistant_service_restarts_total", "New process ids seen for the service since the status page started", "counter", labels, row["restarts"])
            if row["heartbeat_age_s"] is not None:
                out.add("assistant_service_heartbeat_age_seconds", "Seconds since the last heartbeat", "gauge", labels, row["heartbeat_age_s"])
            if row["uptime_s"] is not None:
                out.add("assistant_service_uptime_seconds", "Seconds since the process started", "gauge", labels, row["uptime_s"])
            for key, value in sorted(row["counters"].items()):
                out.add("assistant_service_counter", "A counter from the service's heartbeat (resets when it restarts)", "gauge", {**labels, "name": key}, value)
        for device, there in snap["devices"].items():
            if there is not None:
                out.add("assistant_device_available", "1 while the device is there (0: unplugged or failed)", "gauge", {"device": device}, there)
        with self._lock:
            turns_total = self.turns_total
        out.add("assistant_turns_total", "Conversation turns traced by the brain", "counter", {}, turns_total)
        if snap["turns"]:
            last = snap["turns"][0]
            for stage, _ in _STAGES:
                if last[stage] is not None:
                    out.add("assistant_turn_latency_seconds", "Latest turn: time from the end of speech to each stage", "gauge", {"stage": stage}, last[stage] / 1000)
        cam = snap["camera"]
        if "faces" in cam:
            out.add("assistant_camera_faces", "Faces in the latest analysed frame", "gauge", {}, len(cam["faces"]))
        if "exposure" in cam:
            e = cam["exposure"]
            out.add("assistant_camera_exposure", "Exposure in camera units", "gauge", {}, e["exposure"])
            out.add("assistant_camera_gain", "Gain in camera units", "gauge", {}, e["gain"])
            out.add("assistant_camera_metered_luminance", "Luminance of the metered region, 0..255", "gauge", {}, e["metered"])
        face = snap["face"]
        if "fps" in face:
            out.add("assistant_renderer_fps", "Frames per second shown", "gauge", {}, face["fps"])
            out.add("assistant_renderer_av_offset_ms", "Measured mouth-to-sound offset", "gauge", {}, face["av_offset_ms"])
            out.add("assistant_renderer_dropped_frames", "Frames dropped by the renderer", "gauge", {}, face["dropped"])
        return out.text()


def _points(lm: FaceLandmarks) -> list[list[float]]:
    """The landmark array as rounded [x, y] pairs; empty when the payload does not match its shape."""
    try:
        pts = np.frombuffer(lm.points, dtype="<f4").reshape(lm.shape)
    except ValueError:
        return []
    return np.round(pts, 1).tolist()


class _Exposition:
    """One snapshot's metric families, written by ``prometheus_client`` in the text format (0.0.4).

    A collector made per scrape: the values are the board's state at that moment, not
    instrumented counters (``generate_latest`` takes anything with ``collect()``).
    """

    def __init__(self) -> None:
        self._families: dict[str, Any] = {}

    def add(self, name: str, help_: str, kind: str, labels: dict[str, str], value: float | bool) -> None:
        family = self._families.get(name)
        if family is None:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = self._families[name] = cls(name, help_, labels=list(labels))
        family.add_metric([str(v) for v in labels.values()], float(value))

    def collect(self):
        return iter(self._families.values())

    def text(self) -> str:
        return generate_latest(self).decode()  # type: ignore[arg-type]  # a collector, not a registry
