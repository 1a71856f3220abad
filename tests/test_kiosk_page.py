"""Acceptance: talking to the kiosk in a browser. The real services on one bus, headless Chromium
on the kiosk page: a line typed into the text box, then a spoken sentence from Chromium's fake
microphone (a WAV file); each time the kiosk hears it, answers, and the page receives the face's
frames and plays the answer's voice."""

import time
from urllib.parse import quote

import pytest

from assistant.bus import BusClient
from assistant.config import BusSettings
from assistant.messages import Reply, Transcript, Utterance
from .kiosk_page import Browser, Kiosk, chromium, speech_wav

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def _turn(client, kiosk, predicate, timeout=60.0):
    """Wait for a transcript matching ``predicate``, the brain's reply to it, and the page starting
    one of the reply's utterances; returns (transcript, reply, page stats)."""
    deadline = time.monotonic() + timeout
    heard = reply = None
    utterances: set[str] = set()
    while time.monotonic() < deadline:
        rx = client.recv(timeout_ms=200)
        if rx is not None:
            msg = rx.msg
            if heard is None and isinstance(msg, Transcript) and predicate(msg):
                heard = rx
            elif heard is not None and isinstance(msg, Reply) and rx.header.turn == heard.header.turn:
                reply = msg
            elif heard is not None and isinstance(msg, Utterance) and rx.header.turn == heard.header.turn:
                utterances.add(msg.utterance_id)
        if reply is not None and utterances:
            stats = kiosk.stats()
            if utterances & {uid for uid, *_ in stats["audio_starts"]}:
                return heard.msg, reply, stats
    raise AssertionError(f"no full turn: heard={heard and heard.msg}, reply={reply}, utterances={utterances}\n{kiosk.tail_logs()}")


def _face_reaches_the_page(kiosk, timeout=20.0) -> dict:
    """Page stats once the page has been sent 30 frames and drew more than 5 a second (on a loaded
    box a quick typed turn can end before the page's first second of frames)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = kiosk.stats()
        if stats["frames_sent"] > 30 and stats["fps"] and max(stats["fps"]) > 5 or time.monotonic() > deadline:
            return stats
        time.sleep(0.25)


def test_a_visitor_talks_to_the_kiosk_in_a_browser_by_text_and_by_voice(tmp_path):
    wav = speech_wav(tmp_path)
    kiosk = Kiosk(tmp_path, services=("hearing", "voice", "brain", "renderer"))  # no camera: the visitor is on the page
    kiosk.start()
    client = BusClient(BusSettings(runtime_dir=str(kiosk.runtime_dir)), "kiosk-page-test", [Transcript.TYPE, Reply.TYPE, Utterance.TYPE])
    client.wait_live(10)
    browser = None
    try:
        # The text box: the line enters the brain as a transcript, and the answer is heard on the page.
        browser = Browser(kiosk.url + "?say=" + quote("What time is it?"))
        heard, reply, stats = _turn(client, kiosk, lambda t: t.engine == "typed")
        assert heard.text == "What time is it?" and reply.text
        stats = _face_reaches_the_page(kiosk)
        assert stats["frames_sent"] > 30 and max(stats["fps"]) > 5, stats  # the face reaches the page
        browser.close()
        # The microphone: Chromium's fake microphone says the sentence into the page's open mic.
        browser = Browser(kiosk.url + "?mic=open", wav=wav)
        heard, reply, stats = _turn(client, kiosk, lambda t: t.engine != "typed" and "time" in t.text)
        assert reply.text and stats["viewers"] == 1
        assert stats["av_offset_ms"], "the page measured no mouth-to-sound offsets while the answer played"
    finally:
        if browser is not None:
            browser.close()
        client.close()
        kiosk.stop()
    # Every service shut down cleanly and quietly.
    for proc in kiosk.procs:
        assert proc.returncode == 0
    logs = kiosk.tail_logs(40)
    assert "Traceback" not in logs and "lost the bus broker" not in logs, logs
