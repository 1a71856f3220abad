"""The screen: where face frames go. A full-screen window, a loopback web page, an MP4 recording,
or nothing (headless).

Every output takes frames with the monotonic time they are meant to be seen (``show``) and, where
it can play or store sound, the utterances' audio with their ``play_at`` times (``audio``). None
of them blocks the renderer for long; none knows about the bus.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Protocol

import numpy as np

from .screen_record import VideoRecorder
from .screen_web import WebScreen

log = logging.getLogger(__name__)

__all__ = ["Screen", "ScreenError", "NullScreen", "WindowScreen", "WebScreen", "VideoRecorder",
           "display_size", "open_screen"]


class ScreenError(RuntimeError):
    """An output cannot be opened (no display, port taken, unwritable file)."""


class Screen(Protocol):
    """A face output."""

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        """Present a BGR uint8 frame meant to be seen at monotonic ``t_ns``."""
        ...

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        """Sound (mono int16) that starts at monotonic ``play_at_ns``; outputs without sound ignore it."""
        ...

    def close(self) -> None:
        """Release the output (flush files, stop servers, close windows)."""
        ...


class NullScreen:
    """Headless: counts frames and throws them away."""

    def __init__(self) -> None:
        self.frames = 0
        self.last_t_ns = 0

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        self.frames += 1
        self.last_t_ns = t_ns

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def display_size(display: str | None = None) -> tuple[int, int] | None:
    """(width, height) of the X screen, or None when there is no X display to ask."""
    name = display or os.environ.get("DISPLAY")
    if not name:
        return None
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return None
    x11 = ctypes.cdll.LoadLibrary(lib)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(name.encode())
    if not dpy:
        return None
    try:
        scr = x11.XDefaultScreen(dpy)
        return int(x11.XDisplayWidth(dpy, scr)), int(x11.XDisplayHeight(dpy, scr))
    finally:
        x11.XCloseDisplay(dpy)


class WindowScreen:
    """A borderless window covering the whole X screen (the kiosk display).

    OpenCV's full-screen flag is only honoured by a window manager, and kiosks often run none,
    so the window is also sized and placed to cover the screen explicitly.
    """

    def __init__(self, title: str = "assistant", size: tuple[int, int] | None = None):
        import cv2

        self._cv2 = cv2
        screen = display_size()
        if screen is None:
            raise ScreenError("no X display (DISPLAY unset or unreachable): use the web or null screen")
        self.size = size or screen
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_GUI_NORMAL)
        cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        cv2.resizeWindow(title, *self.size)
        cv2.moveWindow(title, 0, 0)
        self.frames = 0
        log.info("window %r at %dx%d", title, *self.size)

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        cv2 = self._cv2
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        cv2.imshow(self.title, frame)
        cv2.waitKey(1)  # lets the GUI thread paint; the renderer paces itself
        self.frames += 1

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        pass  # the voice service owns the speaker

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)
        except self._cv2.error:
            pass


def open_screen(kind: str, **options) -> Screen:
    """An output by name: ``window``, ``web``, ``record``, ``null``, or ``auto`` (window if there
    is a display, else headless)."""
    if kind == "auto":
        kind = "window" if display_size() is not None else "null"
        if kind == "null":
            log.info("no display: running headless")
    if kind == "window":
        return WindowScreen(**options)
    if kind == "web":
        return WebScreen(**options)
    if kind == "record":
        return VideoRecorder(**options)
    if kind == "null":
        return NullScreen()
    raise ScreenError(f"unknown screen kind {kind!r}: use window, web, record, null or auto")
