"""The renderer's outputs from config: screens by name, the recorder on a worker of its own.

Screens are opened on the frame thread (a GUI window belongs to the thread that made it). The
MP4 recorder encodes in the caller's thread, which would stall the frame loop for an H.264
encode per frame, so it gets a worker (one of the runtime's) with a bounded queue: when encoding cannot keep up,
frames are dropped from the recording (the recorder repeats the previous picture in their
slots, so the file keeps its length and its sync) and counted, and the live face never waits.
"""

from __future__ import annotations

import logging
import queue
from typing import Any, Callable

import numpy as np

from assistant.workers import Workers
from hardware.screen import NullScreen, Screen, ScreenError, VideoRecorder, WebScreen, WindowScreen, display_size

log = logging.getLogger(__name__)

KINDS = ("auto", "window", "web", "record", "null")


def screen_kinds(setting: str | tuple[str, ...]) -> list[str]:
    """The configured screen names as a list without repeats (``auto`` resolved)."""
    names = [setting] if isinstance(setting, str) else list(setting)
    if not names:
        raise ScreenError("renderer.screen is empty: use null for headless")
    out: list[str] = []
    for name in names:
        if name not in KINDS:
            raise ScreenError(f"unknown screen {name!r} in renderer.screen: use one of {', '.join(KINDS)}")
        if name == "auto":
            name = "window" if display_size() is not None else "null"
            if name == "null":
                log.info("no display: running headless")
        if name not in out:
            out.append(name)
    return out


class ThreadedRecorder:
    """A :class:`VideoRecorder` fed through a queue by a worker of its own."""

    def __init__(self, recorder: VideoRecorder, max_queue: int = 60, workers: Workers | None = None):
        self.recorder = recorder
        self.path = recorder.path
        self.dropped = 0
        self._q: queue.Queue[tuple[str, Any] | None] = queue.Queue(max_queue)
        self._error: BaseException | None = None
        self._thread = (workers if workers is not None else Workers("record")).start("renderer-record", self._run)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                break
            kind, args = item
            try:
                getattr(self.recorder, kind)(*args)
            except Exception as exc:  # noqa: BLE001 - a failing encoder must not take the face down
                if self._error is None:
                    log.error("recording %s failed: %s; recording stopped", self.path, exc)
                self._error = exc
                break
        try:
            self.recorder.close()
        except Exception as exc:  # noqa: BLE001
            log.error("recording %s not finished cleanly: %s", self.path, exc)

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        if self._error is not None:
            return
        try:
            self._q.put_nowait(("show", (frame, t_ns)))
        except queue.Full:
            self.dropped += 1

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        # Sound is never dropped: a missing stretch would shift nothing but lose speech in the file.
        self._q.put(("audio", (pcm, sample_rate, play_at_ns, utterance_id)))

    def silence_from(self, at_ns: int) -> None:
        """Barge-in: the speech scheduled after ``at_ns`` was never heard, so the file drops it too."""
        self._q.put(("silence_from", (at_ns,)))

    def close(self, timeout: float = 30.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("recording %s: encoder did not finish within %.0f s", self.path, timeout)


def open_outputs(kinds: list[str], *, fps: float, web_host: str, web_port: int, jpeg_quality: int,
                 max_width: int, record_path: str, web_options: dict | None = None,
                 workers: Workers | None = None) -> list[Screen]:
    """Open every named screen; if one fails, close the others and raise :class:`ScreenError`."""
    opened: list[Screen] = []
    makers: dict[str, Callable[[], Screen]] = {
        "window": lambda: WindowScreen("assistant"),
        "web": lambda: _web(web_host, web_port, jpeg_quality, max_width, web_options or {}),
        "record": lambda: ThreadedRecorder(VideoRecorder(record_path, fps=fps), workers=workers),
        "null": NullScreen,
    }
    try:
        for kind in kinds:
            opened.append(makers[kind]())
    except Exception:
        for screen in opened:
            try:
                screen.close()
            except Exception:  # noqa: BLE001
                log.debug("closing %s after a failed start", screen, exc_info=True)
        raise
    return opened


def _web(host: str, port: int, quality: int, max_width: int, options: dict) -> WebScreen:
    from assistant.web import WebError

    try:
        return WebScreen(host=host, port=port, jpeg_quality=quality, max_width=max_width, **options)
    except (OSError, WebError) as exc:
        raise ScreenError(f"web screen: {getattr(exc, 'strerror', None) or exc}; set renderer.web_host / renderer.web_port"
                          " (0: any free port)") from None
