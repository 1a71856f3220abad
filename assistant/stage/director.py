"""The scripted scene, played against the running kiosk and checked as it goes.

A visitor walks in and is recognised, asks two questions, gets an email read out to them, leaves a
message for reception (confirmed by voice, sent through SMTP), interrupts a long reply with another
question, says thank you and walks away. Every step waits for what the kiosk does on the bus rather than for fixed times, so the
scene keeps its shape on a slow or busy machine; each step has a deadline and its outcome
(``True`` or what went wrong) is kept in ``results``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Callable

from .visitor import ScriptedVisitor
from .walk import WALK_IN, WALK_OUT, write_walk
from .watch import KioskWatch, SaySeen, SceneFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Script:
    """What the visitor says and the mail that arrives for them."""

    name: str = "sam"
    """Who the visitor is enrolled as."""
    question_1: str = "what time is it"
    question_2: str = "where can i get a cup of coffee"
    send: str = "i would like to leave a message for reception"
    body: str = "i am waiting in the lobby"
    confirm: str = "yes please"
    long_question: str = "how do i get to the train station"
    interrupt: str = "where are the toilets please"
    thanks: str = "thank you goodbye"
    mail_from: str = "carol@example.com"
    mail_from_name: str = "Carol"
    mail_subject: str = "For Sam: lunch"
    mail_body: str = "Lunch is at noon in the cafe on the first floor."

    def lines(self) -> list[str]:
        return [self.question_1, self.question_2, self.send, self.body, self.confirm, self.long_question, self.interrupt, self.thanks]


#: Steps that must succeed for the scene to count as played.
REQUIRED = ("recognised", "question_1", "question_2", "mail_delivered")


@dataclass
class Director:
    watch: KioskWatch
    visitor: ScriptedVisitor
    walk_file: str
    deliver_mail: Callable[[bytes], object] | None = None
    """Puts a raw mail into the kiosk's mailbox (the demo's dovecot); None: no mail step."""
    script: Script = field(default_factory=Script)
    results: dict[str, object] = field(default_factory=dict)

    # --- helpers ----------------------------------------------------------------------------
    def step(self, name: str, fn: Callable[[], object]) -> bool:
        log.info("scene: %s", name)
        try:
            fn()
        except SceneFailed as exc:
            log.error("scene step %s failed: %s", name, exc)
            self.results[name] = str(exc)
            return False
        self.results[name] = True
        return True

    def ask(self, text: str, skills: str | tuple[str, ...], timeout_s: float = 20.0) -> SaySeen:
        """Say ``text`` once the assistant is quiet; wait for its reply of one of ``skills`` to end."""
        w = self.watch
        w.quiet(0.7)
        line = self.visitor.say(text)
        reply = w.wait(lambda: w.reply_after(line.start_ns), line.end_ns / 1e9 - time.monotonic_ns() / 1e9 + timeout_s,
                       f"a reply to {text!r}")
        w.wait(lambda: reply.status, 60, f"the reply to {text!r} to end")
        wanted = (skills,) if isinstance(skills, str) else skills
        if reply.skill not in wanted:
            heard = [m.text for _, m in w.transcripts if m.speech_end_ns >= line.start_ns]
            raise SceneFailed(f"{text!r} was heard as {heard} and answered by {reply.skill}: {reply.text!r}")
        return reply

    # --- the scene ----------------------------------------------------------------------------
    def run(self) -> dict[str, object]:
        s = self.script
        self.step("recognised", self.arrive)
        self.step("question_1", lambda: self.ask(s.question_1, "time"))
        self.step("question_2", lambda: self.ask(s.question_2, "knowledge"))
        if self.deliver_mail is not None:
            self.step("mail_delivered", self.mail)
        self.step("message_sent", self.send_message)
        self.step("barge_in", self.barge_in)
        self.step("thanks", lambda: self.ask(self.script.thanks, "smalltalk"))
        self.step("goodbye", self.leave)
        return self.results

    @property
    def ok(self) -> bool:
        return all(self.results.get(k) is True for k in REQUIRED if k != "mail_delivered" or self.deliver_mail is not None)

    def arrive(self) -> None:
        w, name = self.watch, self.script.name
        t = time.monotonic_ns()
        write_walk(self.walk_file, WALK_IN)
        w.wait(lambda: w.person("recognised", name), 40, f"the camera to recognise {name}")
        greeting = w.wait(lambda: w.reply_after(t, "greeting"), 15, "a greeting")
        w.wait(lambda: greeting.status, 30, "the greeting to end")
        if name.lower() not in greeting.text.lower():
            raise SceneFailed(f"greeted without the name: {greeting.text!r}")

    def mail(self) -> None:
        w, s = self.watch, self.script
        w.quiet(0.7)
        t = time.monotonic_ns()
        msg = EmailMessage()
        msg["From"] = f"{s.mail_from_name} <{s.mail_from}>"
        msg["To"] = "kiosk@example.com"
        msg["Subject"] = s.mail_subject
        msg["Message-ID"] = f"<lunch-{t}@example.com>"
        msg.set_content(s.mail_body)
        assert self.deliver_mail is not None
        self.deliver_mail(msg.as_bytes())
        got = w.wait(lambda: next((m for m in w.received if m.subject == s.mail_subject), None), 30, "the email service to receive the mail")
        w.wait(lambda: got.mail_id in w.acks, 10, "the brain to acknowledge the mail")
        reading = w.wait(lambda: w.reply_after(t, "messages"), 20, "the mail to be read out")
        w.wait(lambda: reading.status, 60, "the reading to end")
        if reading.status != "finished" or s.mail_body.split()[0].lower() not in reading.text.lower():
            raise SceneFailed(f"mail reading {reading.status}: {reading.text!r}")

    def send_message(self) -> None:
        w, s = self.watch, self.script
        prompt = self.ask(s.send, "send")
        if "what should the message" not in prompt.text.lower():
            raise SceneFailed(f"not asked what to say: {prompt.text!r}")
        prompt = self.ask(s.body, "send")
        if "shall i send it" not in prompt.text.lower():
            raise SceneFailed(f"no confirmation question: {prompt.text!r}")
        t = time.monotonic_ns()
        self.ask(s.confirm, "send")
        sent = w.wait(lambda: next((m for m in w.sends if any("reception" in a for a in m.to)), None), 10, "an email.send to reception")
        w.wait(lambda: sent.send_id in w.sent, 30, "the SMTP server to accept the message")
        log.info("message sent %.1f s after the yes", (time.monotonic_ns() - t) / 1e9)

    def barge_in(self) -> None:
        w, s = self.watch, self.script
        w.quiet(0.7)
        line = self.visitor.say(s.long_question)
        reply = w.wait(lambda: w.reply_after(line.start_ns), 20, f"a reply to {s.long_question!r}")
        w.wait(lambda: reply.first_sound_ns and time.monotonic_ns() > reply.first_sound_ns + 1_500_000_000, 20,
               "the long reply to be playing")
        stops = len(w.stops)
        cut = self.visitor.say(s.interrupt)
        w.wait(lambda: any(r == "barge-in" for _, r in w.stops[stops:]), cut.end_ns / 1e9 - time.monotonic_ns() / 1e9 + 5,
               "the voice to be stopped by the visitor talking")
        w.wait(lambda: reply.status, 10, "the interrupted reply to end")
        if reply.status != "interrupted":
            raise SceneFailed(f"the long reply {reply.status} instead of being interrupted")
        after = w.wait(lambda: w.reply_after(cut.start_ns), 15, f"a reply to {s.interrupt!r}")
        w.wait(lambda: after.status, 30, "that reply to end")
        if "toilets" not in after.text.lower():
            raise SceneFailed(f"the interrupting question was answered by {after.skill}: {after.text!r}")

    def leave(self) -> None:
        w, name = self.watch, self.script.name
        w.quiet(0.5)
        t, seen = time.monotonic_ns(), len(w.people)
        write_walk(self.walk_file, WALK_OUT)
        w.wait(lambda: any(p.event == "left" for p in w.people[seen:]), 20, f"{name} to leave")
        bye = w.wait(lambda: w.reply_after(t, "goodbye"), 10, "a goodbye")
        w.wait(lambda: bye.status, 20, "the goodbye to end")
