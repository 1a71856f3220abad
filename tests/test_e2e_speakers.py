"""Two visitors at the kiosk, end to end: who is speaking decides whose mail may be read.

Real processes on the real bus (camera, hearing, voice, email, brain), devices on their twins: the
simulated camera stages two GRID speakers side by side (``camera.sim_cast_file``), the face of
whoever talks plays its talking frames while their line (espeak-ng ``mb-us2``) plays into the
microphone twin; mail goes through a real dovecot. Sam (enrolled) gets her mail; the unknown
visitor beside her asks for "my messages" and must not hear Sam's.
"""

from __future__ import annotations

import json
import os
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from assistant.stage.kiosk import Kiosk, missing_prerequisites

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SAM, STRANGER = "bbaf2n", "lwbsza"  # Kiosk.enrol enrols the first GRID clip as Sam
STAND = {SAM: -0.22, STRANGER: 0.22}
#: Clip time where each GRID speaker's talking frames start (their lead-in silence skipped).
TALK_FROM_S = 0.6


@pytest.fixture(autouse=True)
def _prerequisites(shared_data):
    problems = missing_prerequisites()
    if problems:
        pytest.skip("needs " + "; ".join(problems))


def write_cast(path: Path, present: list[str], talking: dict[str, tuple[float, float]] | None = None) -> None:
    """Who stands at the kiosk (still) and who talks when (monotonic start s, duration s)."""
    people = []
    for clip in present:
        talk = [[talking[clip][0], TALK_FROM_S, talking[clip][1]]] if talking and clip in talking else []
        people.append({"clip": clip, "walk": [[0.0, STAND[clip], 0.8], [3600.0, STAND[clip], 0.8]], "talk": talk})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"people": people}))
    os.replace(tmp, path)


def test_the_unknown_visitor_beside_sam_never_gets_her_mail(tmp_path, monkeypatch):
    # espeak-ng speaks the replies: this test is about who is served, and Piper would take a core.
    monkeypatch.setenv("ASSISTANT_VOICE__ENGINES", '["espeak-ng"]')
    work = tmp_path / "kiosk"
    work.mkdir()
    cast = work / "cast.json"
    write_cast(cast, [])
    # Lines of ~2 s: the camera needs a few hundred ms of lip motion with the sound to name the speaker.
    lines = ["could you please read my new messages to me", "excuse me do i have any messages waiting for me"]
    with Kiosk(work, mail=True, enrol="sam", services=("camera", "hearing", "voice", "email", "brain"),
               camera_config=f'sim_cast_file = "{cast}"\nmax_engaged = 2\n') as kiosk:
        w = kiosk.start(lines)
        # Mail for Sam waits in the mailbox.
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "Carol <carol@example.com>", "kiosk@example.com", "For Sam: the door code"
        msg["Message-ID"] = f"<door-{time.monotonic_ns()}@example.com>"
        msg.set_content("The door code is four seven one one.")
        kiosk.dovecot.deliver(msg.as_bytes())
        got = w.wait(lambda: next((m for m in w.received if "door code" in m.subject), None), 30, "the mail to arrive")
        w.wait(lambda: got.mail_id in w.acks, 10, "the brain to store the mail")

        # Sam steps up and is recognised; her mail is hers (read unasked at the first quiet moment).
        t = time.monotonic_ns()
        write_cast(cast, [SAM])
        w.wait(lambda: w.person("recognised", "sam"), 40, "the camera to recognise Sam")
        sam_track = w.person("recognised", "sam").track_id
        reading = w.wait(lambda: w.reply_after(t, "messages"), 30, "Sam's mail to be read to her")
        assert "door code" in reading.text.lower() and "Sam" in reading.text
        w.wait(lambda: reading.status, 40, "the reading to end")

        # A stranger stands beside her, and is greeted (after the brain's wait for a recognition that
        # does not come): Sam's line must not be said over that greeting.
        seen = len(w.people)
        t_stranger = time.monotonic_ns()
        write_cast(cast, [SAM, STRANGER])
        arrived = w.wait(lambda: next((p for p in w.people[seen:] if p.event == "engaged" and p.track_id != sam_track), None), 30,
                         "the stranger to engage")
        stranger_track = arrived.track_id
        greeting = w.wait(lambda: w.reply_after(t_stranger, "greeting"), 30, "the stranger's greeting")
        assert "welcome" in greeting.text.lower() and "Sam" not in greeting.text, greeting.text
        w.wait(lambda: greeting.status, 30, "the greeting to end")
        w.quiet(0.8)

        def seen_speakers() -> str:
            cam = w.counters.get("camera", {})
            heard = "".join("V" if v else "." for a in w.activity[-40:] for v in a.voiced)
            return f"{[(s.track_id, s.since_ns) for s in w.speakers]}, " + str({k: v for k, v in cam.items() if "speaker" in k or "activity" in k}) + f" heard {heard}"

        def say(clip: str, text: str):
            present = [SAM, STRANGER]
            line = kiosk.visitor.say(text, lead_s=0.6)
            write_cast(cast, present, {clip: (line.start_ns / 1e9, (line.end_ns - line.start_ns) / 1e9)})
            return line

        def camera_fps_since(frames0: float, t0: float) -> float:
            return (w.counters.get("camera", {}).get("frames", 0) - frames0) / max(1e-3, time.monotonic() - t0)

        def need_speaker(pred, what: str) -> None:
            """Wait for the camera to name a speaker; a camera too starved of CPU to read lips (a few fps on an
            overloaded machine) is the machine's limit, not this feature's: skipped, saying so."""
            try:
                w.wait(pred, 3, lambda: f"{what}: {seen_speakers()}")
            except AssertionError:
                fps = camera_fps_since(frames0, t_line)
                if fps < 8:
                    pytest.skip(f"the camera ran at {fps:.1f} fps on this loaded machine (who-is-speaking needs >= 8): {seen_speakers()}")
                raise

        # Sam asks for her mail: it is answered to her.
        n_speakers = len(w.speakers)
        frames0, t_line = w.counters.get("camera", {}).get("frames", 0), time.monotonic()
        line = say(SAM, lines[0])
        answer = w.wait(lambda: w.reply_after(line.start_ns, "messages"), 25, "an answer to Sam")
        need_speaker(lambda: any(s.track_id == sam_track for s in w.speakers[n_speakers:]), "the camera to name Sam the speaker")
        assert "Sam" in answer.text, (answer.text, sam_track, stranger_track, seen_speakers(), f"{camera_fps_since(frames0, t_line):.1f} fps")
        w.wait(lambda: answer.status, 30, "that answer to end")
        w.quiet(0.8)

        # The stranger asks for "my messages": not Sam's.
        n_speakers = len(w.speakers)
        frames0, t_line = w.counters.get("camera", {}).get("frames", 0), time.monotonic()
        line = say(STRANGER, lines[1])
        answer = w.wait(lambda: w.reply_after(line.start_ns, "messages"), 25, "an answer to the stranger")
        need_speaker(lambda: [s for s in w.speakers[n_speakers:] if s.since_ns <= line.end_ns], "the camera to name the stranger")
        assert answer.text == "I'm sorry, I don't recognise you, so I can't check messages for you.", answer.text
        assert "door" not in answer.text.lower() and "Sam" not in answer.text
        picked = [s for s in w.speakers[n_speakers:] if s.since_ns <= line.end_ns]
        assert picked[-1].track_id == stranger_track, seen_speakers()
        # Both turns went by who spoke (heartbeats carry the counters once a second).
        w.wait(lambda: w.counters.get("brain", {}).get("turns_attributed", 0) >= 2, 5, lambda: f"two attributed turns: {w.counters.get('brain')}")
        hb = w.counters
        assert all(c.get("handler_errors", 0) == 0 for c in hb.values())
