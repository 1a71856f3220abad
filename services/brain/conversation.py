"""The conversation engine: visitors, turns, skills, mail, barge-in, filler and latency traces.

A plain class with no bus in it: every ``on_*`` method takes what a message said and returns the
messages to publish (``Out``) and, for open questions, a ``Job`` whose slow part (``think``:
knowledge base by meaning, then the chat endpoint) runs off the service loop. ``tick`` drives
everything time-based (polite greetings, filler, expiring yes/no questions, queued mail, traces).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, NamedTuple

from assistant.config.schema import BrainSettings
from assistant.messages import EmailAck, EmailReceived, EmailSend, Message, Phrases, Reply, Say, Stop

from . import skills
from .chat import ChatClient, ChatError
from .inbox import announce, read_out, recipient_of
from .knowledge import KnowledgeBase
from .mailstore import MailStore, Outgoing, StoredMail
from .sessions import Sessions, SessionEvent, Visitor
from .text import display_name, normalise, same_person, yes_or_no
from .trace import TraceBook

log = logging.getLogger(__name__)

#: Skills whose words are personal: what the kiosk says for them is never cached on disk.
_PRIVATE_SKILLS = frozenset({"messages", "send", "chat"})

_S = 1_000_000_000


class Out(NamedTuple):
    """A message to publish and the turn it belongs to."""

    msg: Message
    turn: str = ""


@dataclass
class Job:
    """An open question being answered off the loop."""

    turn: str
    text: str
    person: str
    track_id: int
    started_ns: int
    filler_said: bool = False


@dataclass(frozen=True)
class Answer:
    text: str
    skill: str
    offer: bool = False
    """The answer offers to email the question to the fallback contact (expects yes/no)."""


@dataclass
class _Pending:
    """A question the brain asked and waits an answer for."""

    kind: str  # "confirm" (send this draft?) or "body" (what should the message say?)
    track_id: int
    expires_ns: int
    name: str = ""
    address: str = ""
    draft: Outgoing | None = None
    reasked: bool = False
    offer: bool = False
    """We offered this (fallback email): anything but yes/no simply moves on."""


@dataclass
class _Speaking:
    """A ``voice.say`` not yet reported done; ``deadline_ns`` guards against a voice that never answers."""

    turn: str
    track_id: int
    deadline_ns: int
    mail_ids: list[str] = field(default_factory=list)
    announcement: bool = False


class Brain:
    def __init__(
        self, settings: BrainSettings, store: MailStore, kb: KnowledgeBase | None = None, chat: ChatClient | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns, now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.s = settings
        self.store = store
        self.kb = kb
        self.chat = chat
        self.clock_ns = clock_ns
        self.now = now
        self.book = skills.AddressBook(dict(settings.address_book))
        self.sessions = Sessions(int(settings.greet_wait_s * _S))
        self._held: tuple[int, tuple] | None = None
        """An utterance waiting for the camera to name its speaker: (deadline ns, on_transcript arguments)."""
        self.traces = TraceBook(int(settings.trace_timeout_s * _S))
        self.speaking: dict[str, _Speaking] = {}
        self.job: Job | None = None
        self.pending: _Pending | None = None
        self._answer_after: tuple[str, int] = ("", 0)
        """The last transcript's turn and the clock time its answer may start (end of speech + answer gap)."""
        self._last_turn: tuple[str, _Pending | None] = ("", None)
        """The last transcript's turn and the question we were waiting on before it: hearing sends the same
        turn again (the whole text) when the visitor went on after a pause we took for the end."""
        self.counters: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._announcing: set[str] = set()
        self._announce_not_before: dict[str, int] = {}  # mail id -> clock ns: its last try failed
        self._next_quiet_ns = 0

    # --- helpers -------------------------------------------------------------------------
    def count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def say(self, text: str, skill: str, *, turn: str = "", visitor: Visitor | None = None, mail_ids: list[str] | None = None, announcement: bool = False) -> list[Out]:
        """A ``voice.say`` and its ``brain.reply``, remembered until the voice reports it done."""
        now = self.clock_ns()
        say_id = f"{turn or 'brain'}:{next(self._ids)}"
        # Generous: ~15 characters a second of speech, plus start-up; only matters without a voice.
        deadline = now + int((3 + len(text) / 12) * _S)
        self.speaking[say_id] = _Speaking(turn, visitor.track_id if visitor else -1, deadline, list(mail_ids or []), announcement)
        if skill != "filler":  # the trace's reply time is when the answer itself was decided
            self.traces.replied(turn, now)
        person = display_name(visitor.identity) if visitor and visitor.identity else ""
        self.count("replies")
        # What the kiosk says can be personal (a visitor's mail): the words only at DEBUG.
        log.info("say [%s] (%d characters)", skill, len(text))
        log.debug("say [%s] %s", skill, text)
        # Mail, dictated messages, chat answers and anything naming the visitor stay out of the voice's disk cache.
        private = bool(mail_ids) or announcement or skill in _PRIVATE_SKILLS or bool(person and person.split()[0].lower() in text.lower())
        not_before = self._answer_after[1] if turn and turn == self._answer_after[0] else 0
        return [Out(Say(text=text, lang=self.s.lang, say_id=say_id, private=private, not_before_ns=not_before), turn),
                Out(Reply(text=text, skill=skill, person=person, track_id=visitor.track_id if visitor else -1), turn)]

    def stop(self, reason: str) -> list[Out]:
        """Silence the voice and forget what was being said (mail in it stays pending)."""
        for sp in self.speaking.values():
            if sp.announcement:  # interrupted announcements count as heard: never repeat them
                self._announcing.difference_update(sp.mail_ids)
                self.store.mark_done(sp.mail_ids)
        self.speaking.clear()
        self.count("stops")
        return [Out(Stop(reason=reason))]

    @property
    def is_speaking(self) -> bool:
        return bool(self.speaking)

    def phrases(self) -> Out:
        words = list(skills.PHRASES) + self.book.names() + (self.kb.phrases() if self.kb is not None else [])
        # Normalised like STT output (lower case, no punctuation), so the engine can use them as they are.
        return Out(Phrases(phrases=list(dict.fromkeys(w for w in map(normalise, words) if w))))

    # --- visitors --------------------------------------------------------------------------
    def on_person(self, event: str, track_id: int, identity: str) -> list[Out]:
        now = self.clock_ns()
        out: list[Out] = []
        for ev in self.sessions.event(event, track_id, identity, now):
            out += self._session_event(ev)
        return out

    def _session_event(self, ev: SessionEvent) -> list[Out]:
        v = ev.visitor
        if ev.kind == "greet":
            self.count("greetings")
            if v.identity:
                return self.say(f"Hello {display_name(v.identity)}! How can I help you today?", "greeting", visitor=v)
            return self.say(f"Hello, welcome! I'm {self.s.name}. How can I help you?", "greeting", visitor=v)
        if ev.kind in ("goodbye", "left"):
            out: list[Out] = []
            talking_to_them = any(sp.track_id == v.track_id for sp in self.speaking.values())
            if talking_to_them:
                out += self.stop("visitor left")
            if self.job is not None and self.job.track_id == v.track_id:
                self.job = None  # nobody left to hear the answer
            if self.pending is not None and self.pending.track_id == v.track_id:
                self.pending = None
            if ev.kind == "goodbye":
                self.count("goodbyes")
                who = f", {display_name(v.identity)}" if v.identity else ""
                out += self.say(f"Goodbye{who}! Have a nice day.", "goodbye", visitor=v)
            return out
        return []  # "recognised" after greeting: pending mail is offered by tick()

    # --- hearing -------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        """Speech is meant for us: someone is engaged, or ``always_listen`` (a visitor on the kiosk page)."""
        return self.s.always_listen or self.sessions.listening

    def on_speech_started(self, during_playback: bool) -> list[Out]:
        """Barge-in: a visitor talking over the assistant silences it at once."""
        if not self.listening:
            return []
        if self.job is not None:
            self.count("answers_overtaken")
            self.job = None  # they are still talking, or asking again: answer the new utterance instead
        if not (during_playback or self.is_speaking):
            return []
        self.count("barge_ins")
        return self.stop("barge-in")

    def on_speaker(self, track_id: int, since_ns: int) -> list[Out | Job]:
        """``vision.speaker``: the camera saw who is talking (utterances are attributed by it); an
        utterance held for it is answered now."""
        self.sessions.speaker(track_id, since_ns)
        self.count("speaker_changes")
        held = self._held
        if held is not None and since_ns <= held[1][3]:
            self._held = None
            return self.on_transcript(*held[1], released=True)
        return []

    def _hold_for_speaker(self, args: tuple, speech_start_ns: int) -> bool:
        """Several visitors and no speaker change seen during this utterance: the camera (its lips
        against the sound arrive up to a second late) may not have named the new speaker yet."""
        if self.s.speaker_wait_s <= 0 or len(self.sessions.visitors) < 2 or not speech_start_ns:
            return False
        if any(since >= speech_start_ns - 500_000_000 for since, _ in self.sessions.speakers):
            return False
        self._held = (self.clock_ns() + int(self.s.speaker_wait_s * _S), args)
        self.count("turns_held_for_speaker")
        return True

    def speaking_visitor(self, speech_start_ns: int, speech_end_ns: int) -> Visitor | None:
        """Who said the utterance: the camera's speaker over its time; without one, the visitor the
        conversation is with (who engaged first)."""
        v = self.sessions.speaker_during(speech_start_ns, speech_end_ns) if speech_start_ns else None
        if v is not None:
            self.count("turns_attributed")
            return v
        return self.sessions.active()

    def on_transcript(self, turn: str, text: str, confidence: float, speech_end_ns: int, transcript_ns: int,
                      speech_start_ns: int = 0, end_tentative: bool = False, *, released: bool = False,
                      unsure: bool = False) -> list[Out | Job]:
        """A final transcript. ``end_tentative``: hearing was not sure of the end (the voice still up at the pause,
        or a doubted sentence): the answer is held for ``answer_gap_tentative_ms``. ``unsure``: several visitors stand there and the camera never named
        who said it (its wait ran out): it is answered, but nobody's mail is read on that guess."""
        if not released and self.listening:
            older = self._held
            if self._hold_for_speaker((turn, text, confidence, speech_end_ns, transcript_ns, speech_start_ns, end_tentative),
                                      speech_start_ns):
                if older is not None and older[1][0] != turn:  # (a revision of the same turn replaces it)
                    self.count("turns_released_by_next")  # one held at a time: the older is answered as things stand
                    return self.on_transcript(*older[1], released=True, unsure=True)
                return []
        if not self.listening:
            self.count("ignored_nobody_engaged")
            return []
        text = " ".join(text.split())
        if not any(c.isalnum() for c in text):
            self.count("ignored_silence")
            return []
        visitor = self.speaking_visitor(speech_start_ns, speech_end_ns)
        if turn and turn == self._last_turn[0]:
            # A revision: the answer to the first part (if any) was dropped when speech resumed; the
            # whole sentence is answered as if the first part had never been heard.
            self.count("turns_continued")
            self.pending = self._last_turn[1]
            if self.job is not None and self.job.turn == turn:
                self.job = None
        else:
            self.count("turns")
        self._last_turn = (turn, self.pending)
        self.traces.start(turn, speech_end_ns, transcript_ns)
        # The answer waits for the gap after the end of speech (never longer than the gap from now: a clock
        # that disagrees must not silence the kiosk); speech resuming before then stops it unheard. A tentative
        # end (the voice still up at the pause, or a doubted sentence) gets the longer gap: such a visitor mostly goes on.
        gap = self.s.answer_hold_ms(end_tentative) * 1_000_000
        self._answer_after = (turn, min(speech_end_ns, self.clock_ns()) + gap if gap and speech_end_ns else 0)
        if self.is_speaking:
            out: list[Out | Job] = list(self.stop("barge-in"))  # talked over us without a speech edge
        else:
            out = []
        if self.s.min_confidence > 0 and confidence < self.s.min_confidence:
            self.count("not_understood")
            return out + self.say("Sorry, I didn't catch that. Could you say it again?", "not-understood", turn=turn, visitor=visitor)
        if self.pending is not None:
            handled = self._answer_pending(turn, text, visitor)
            if handled is not None:
                return out + handled
        intent = skills.parse(text)
        if intent.kind == "open":
            if len(text.split()) > self.s.max_question_words:
                self.count("monologues")
                return out + self.say("That was a lot! Could you ask me your question in one short sentence?", "too-long", turn=turn, visitor=visitor)
            self.job = Job(turn, text, visitor.identity if visitor else "", visitor.track_id if visitor else -1, self.clock_ns())
            return out + [self.job]
        return out + self._rule(intent, turn, visitor, unsure)

    def _rule(self, intent: skills.Intent, turn: str, visitor: Visitor | None, unsure: bool = False) -> list[Out]:
        self.count(f"skill_{intent.kind}")
        if intent.kind == "time":
            return self.say(skills.say_time(self.now()), "time", turn=turn, visitor=visitor)
        if intent.kind == "date":
            return self.say(skills.say_date(self.now()), "date", turn=turn, visitor=visitor)
        if intent.kind == "help":
            examples = [e.questions[0].lower() for e in self.kb.entries[:1]] if self.kb else []
            return self.say(skills.say_help(examples, self.book.names()), "help", turn=turn, visitor=visitor)
        if intent.kind == "hello":
            return self.say("Hello! How can I help?", "smalltalk", turn=turn, visitor=visitor)
        if intent.kind == "bye":
            return self.say("Goodbye! Come back any time.", "smalltalk", turn=turn, visitor=visitor)
        if intent.kind == "thanks":
            return self.say("You're welcome!", "smalltalk", turn=turn, visitor=visitor)
        if intent.kind == "messages":
            return self._messages(turn, visitor, unsure)
        return self._send(intent.name, intent.body, turn, visitor)

    # --- messages for the visitor ------------------------------------------------------------
    def _messages(self, turn: str, visitor: Visitor | None, unsure: bool = False) -> list[Out]:
        """The one place mail is read out: only to its owner, never on a guess of who asked."""
        if unsure and visitor is not None and visitor.identity:
            # The last speaker the camera named may not be who asked.
            self.count("messages_withheld_speaker_unsure")
            return self.say("I couldn't see which of you asked. Whoever wants their messages, please ask me again"
                            " while facing me.", "messages", turn=turn, visitor=None)
        if visitor is None or not visitor.identity:
            return self.say("I'm sorry, I don't recognise you, so I can't check messages for you.", "messages", turn=turn, visitor=visitor)
        mails = self._mail_for(visitor)
        if not mails:
            return self.say(f"No new messages for you, {display_name(visitor.identity)}.", "messages", turn=turn, visitor=visitor)
        shown = mails[:3]
        visitor.offered.update(m.mail_id for m in shown)
        return self.say(read_out(mails, self.s.max_spoken_chars), "messages", turn=turn, visitor=visitor, mail_ids=[m.mail_id for m in shown])

    def _mail_for(self, visitor: Visitor) -> list[StoredMail]:
        keys = [k for k in self.store.recipients() if same_person(visitor.identity, k)]
        return self.store.pending_for(keys)

    # --- sending a message -----------------------------------------------------------------
    def _send(self, name: str, body: str, turn: str, visitor: Visitor | None) -> list[Out]:
        found = self.book.find(name)
        if found is None:
            names = self.book.names()
            known = f" I can send messages to {skills.join_names(names)}." if names else " No one is in my address book yet."
            return self.say(f"Sorry, I don't have an address for {name}.{known}", "send", turn=turn, visitor=visitor)
        display, address = found
        expires = self.clock_ns() + int(self.s.confirm_timeout_s * _S)
        track = visitor.track_id if visitor else -1
        if not body:
            self.pending = _Pending("body", track, expires, display, address)
            return self.say(f"What should the message to {display} say?", "send", turn=turn, visitor=visitor)
        self.pending = _Pending("confirm", track, expires, display, address, self._draft(display, address, body, visitor))
        return self.say(f"I'll send this to {display}: {body}. Shall I send it? Please say yes or no.", "send", turn=turn, visitor=visitor)

    def _draft(self, display: str, address: str, body: str, visitor: Visitor | None) -> Outgoing:
        who = display_name(visitor.identity) if visitor and visitor.identity else "a visitor"
        stamp = self.now().strftime("%H:%M on %d %B %Y")
        text = f"{body[0].upper()}{body[1:]}\n\n-- \nLeft for {display} at the {self.s.name} kiosk by {who} at {stamp}."
        return Outgoing(f"brain-{time.time_ns():x}-{next(self._ids)}", (address,), f"Message from {who} at the kiosk", text)

    def _answer_pending(self, turn: str, text: str, visitor: Visitor | None) -> list[Out] | None:
        """Handle the answer to a question we asked; ``None`` when the utterance is something else."""
        p = self.pending
        assert p is not None
        if p.kind == "body":
            self.pending = None
            if len(text.split()) <= 3 and yes_or_no(text) is False:  # "no", "cancel", "never mind"
                return self.say("OK, no message then.", "send", turn=turn, visitor=visitor)
            return self._send(p.name, text, turn, visitor)
        answer = yes_or_no(text)
        if answer is None:
            if p.reasked or p.offer or skills.parse(text).kind != "open":
                self.pending = None
                return None
            p.reasked = True
            return self.say("Sorry, was that a yes or a no?", "send", turn=turn, visitor=visitor)
        self.pending = None
        if not answer:
            self.count("send_declined")
            return self.say("OK, I won't send it.", "send", turn=turn, visitor=visitor)
        assert p.draft is not None
        self.store.queue(p.draft)
        self._last_turn = ("", None)  # sent: a continuation of this turn must not send it again
        self.count("emails_requested")
        log.info("sending message %s to %s", p.draft.send_id, p.name)
        send = Out(EmailSend(send_id=p.draft.send_id, to=list(p.draft.recipients), subject=p.draft.subject, body=p.draft.body), turn)
        return [send] + self.say(f"Done, I'm sending it to {p.name}.", "send", turn=turn, visitor=visitor)

    # --- open questions (off the loop) -------------------------------------------------------
    def think(self, job: Job) -> Answer:
        """Knowledge base, then chat endpoint, then fallback. Runs on a worker thread: reads only."""
        if self.kb is not None:
            match = self.kb.best(job.text)
            if match is not None:
                log.debug("knowledge: %.2f %r ~ %r", match.score, job.text, match.question)
                if match.score >= self.kb.threshold:
                    return Answer(match.entry.answer, "knowledge")
        if self.chat is not None:
            try:
                return Answer(self.chat.ask(job.text), "chat")
            except ChatError as exc:
                log.warning("%s; answering with the fallback", exc)
        contact = self.book.find(self.s.fallback_contact) if self.s.fallback_contact else None
        if contact is not None:
            return Answer(f"I'm sorry, I don't know that. Shall I email your question to {contact[0]}?", "fallback", offer=True)
        return Answer(
            "I'm sorry, I don't know that. I can email someone for you: say send a message to, a name, saying, and your question.",
            "fallback",
        )

    def on_answer(self, job: Job, answer: Answer) -> list[Out]:
        if self.job is not job:
            self.count("answers_dropped")  # barged in, or the visitor left
            return []
        self.job = None
        self.count(f"answer_{answer.skill}")
        visitor = self.sessions.visitors.get(job.track_id)
        if answer.offer:
            display, address = self.book.find(self.s.fallback_contact)  # type: ignore[misc]
            draft = self._draft(display, address, f"A visitor asked: {job.text}", visitor)
            self.pending = _Pending("confirm", job.track_id, self.clock_ns() + int(self.s.confirm_timeout_s * _S), display, address, draft, offer=True)
        return self.say(answer.text, answer.skill, turn=job.turn, visitor=visitor)

    def on_answer_failed(self, job: Job, error: BaseException) -> list[Out]:
        log.error("answering a visitor failed: %s", error)
        log.debug("the question was %r", job.text)
        return self.on_answer(job, Answer("Sorry, something went wrong there. Could you ask me again?", "error"))

    # --- voice and renderer ----------------------------------------------------------------
    def on_utterance(self, say_id: str, utterance_id: str, play_at_ns: int) -> None:
        sp = self.speaking.get(say_id)
        if sp is not None:
            self.traces.sound(sp.turn, utterance_id, play_at_ns)

    def on_mouth(self, utterance_id: str, shown_ns: int) -> list[Out]:
        done = self.traces.mouth(utterance_id, shown_ns)
        return [Out(done[1], done[0])] if done else []

    def on_voice_done(self, say_id: str, status: str, last: bool) -> None:
        sp = self.speaking.get(say_id)
        if sp is None or (status == "finished" and not last):
            return
        del self.speaking[say_id]
        if sp.announcement:
            self._announcing.difference_update(sp.mail_ids)
            if status != "failed":  # interrupted announcements count as heard: never repeat them
                self.store.mark_done(sp.mail_ids)
            else:  # the voice could not speak it (speaker gone): try again later, not in a loop
                retry = self.clock_ns() + int(self.s.announcement_retry_s * 1e9)
                self._announce_not_before.update((m, retry) for m in sp.mail_ids)
        elif sp.mail_ids and status == "finished":
            self.store.mark_done(sp.mail_ids)  # personal mail is done only once read out in full
            self.count("mail_delivered", len(sp.mail_ids))

    # --- email ------------------------------------------------------------------------------
    def on_email(self, mail: EmailReceived) -> list[Out]:
        """Store, then acknowledge; a store failure leaves the mail unacknowledged (the email service keeps it)."""
        recipient, subject = recipient_of(mail.to, mail.subject, self.book)
        stored = StoredMail(mail.mail_id, recipient, mail.sender, mail.sender_name, subject, mail.text, time.time())
        try:
            fresh = self.store.store(stored)
        except Exception as exc:  # noqa: BLE001 - sqlite errors (disk full, locked): no ack, log, go on
            self.count("store_errors")
            log.error("could not store mail %s: %s; not acknowledging it", mail.mail_id, exc)
            return []
        self.count("mail_stored" if fresh else "mail_redelivered")
        log.info("mail %s stored for %s", mail.mail_id, "a visitor" if recipient else "everyone (announcement)")
        log.debug("mail %s from %s stored for %s", mail.mail_id, mail.sender, recipient or "everyone")
        return [Out(EmailAck(mail_id=mail.mail_id))]

    def on_email_result(self, send_id: str, ok: bool, error: str = "", permanent: bool = True) -> list[Out]:
        if not ok and not permanent:
            return []  # the email service retries by itself
        if not self.store.finish(send_id, "sent" if ok else "failed", error):
            return []
        self.count("emails_sent" if ok else "emails_failed")
        if not ok and self.sessions.present:
            return self.say("Sorry, a message could not be sent. Please ask at the front desk.", "send")
        return []

    def outbox(self) -> list[Out]:
        """Send requests not yet confirmed, to publish again."""
        return [Out(EmailSend(send_id=o.send_id, to=list(o.recipients), subject=o.subject, body=o.body)) for o in self.store.outgoing()]

    # --- time ---------------------------------------------------------------------------------
    def tick(self) -> list[Out | Job]:
        now = self.clock_ns()
        out: list[Out | Job] = []
        if self._held is not None and now >= self._held[0]:
            args, self._held = self._held[1], None
            self.count("turns_speaker_wait_expired")
            out += self.on_transcript(*args, released=True, unsure=True)
        for ev in self.sessions.tick(now):
            out += self._session_event(ev)
        for say_id, sp in list(self.speaking.items()):
            if now > sp.deadline_ns:
                log.warning("no voice.done for %s; assuming it ended", say_id)
                self.on_voice_done(say_id, "failed", True)
        if self.job is not None and not self.job.filler_said and now - self.job.started_ns >= self.s.filler_after_s * _S:
            self.job.filler_said = True
            self.count("fillers")
            out += self.say(self.s.filler, "filler", turn=self.job.turn, visitor=self.sessions.visitors.get(self.job.track_id))
        if self.pending is not None and now > self.pending.expires_ns:
            log.info("yes/no question expired")
            self.pending = None
        for turn, trace in self.traces.expire(now):
            out.append(Out(trace, turn))
        # Not while a yes/no question waits for its answer: mail read in between would confuse it.
        if not out and not self.is_speaking and self.job is None and self.pending is None and now >= self._next_quiet_ns:
            self._next_quiet_ns = now + _S // 4  # the check reads sqlite: a few times a second is plenty
            out += self._quiet_moment()
        return out

    def _quiet_moment(self) -> list[Out]:
        """Nothing is being said: deliver new personal mail to engaged visitors, then announcements."""
        for v in self.sessions.engaged_known():
            mails = [m for m in self._mail_for(v) if m.mail_id not in v.offered]
            if mails:
                shown = mails[:3]
                v.offered.update(m.mail_id for m in shown)
                self.count("mail_offered", len(shown))
                text = read_out(mails, self.s.max_spoken_chars)
                text = f"{display_name(v.identity)}, {text[0].lower()}{text[1:]}"
                return self.say(text, "messages", visitor=v, mail_ids=[m.mail_id for m in shown])
        if self.sessions.present:
            now = self.clock_ns()
            pending = self.store.pending_announcements(self.s.announcement_max_age_s)
            if self._announce_not_before:  # forget retries of announcements that have expired meanwhile
                ids = {m.mail_id for m in pending}
                self._announce_not_before = {k: t for k, t in self._announce_not_before.items() if k in ids}
            for mail in pending:
                if mail.mail_id not in self._announcing and self._announce_not_before.get(mail.mail_id, 0) <= now:
                    self._announce_not_before.pop(mail.mail_id, None)
                    self._announcing.add(mail.mail_id)
                    self.count("announcements")
                    return self.say(announce(mail, self.s.max_spoken_chars), "announcement", mail_ids=[mail.mail_id], announcement=True)
        return []
