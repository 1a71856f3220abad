"""The conversation engine on its own: visitors, skills, mail, barge-in, filler, traces (fake clock, real KB and store)."""

from pathlib import Path

import pytest

from assistant.messages import EmailAck, EmailReceived, EmailSend, Phrases, Say, Stop, TurnTrace
from services.brain.conversation import Brain, Job
from services.brain.knowledge import KnowledgeBase
from services.brain.mailstore import MailStore

from .brain_helpers import FIXED_NOW, Clock, embedder, of_type, replies, says, settings

SAMPLE = Path(__file__).resolve().parents[1] / "services" / "brain" / "knowledge.toml"
_kb = None


def kb():
    global _kb
    if _kb is None:
        _kb = KnowledgeBase.from_file(SAMPLE, embedder(), 0.5)
    return _kb


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make(tmp_path, clock):
    def make(**kw):
        store = MailStore(tmp_path / "brain.sqlite")
        return Brain(settings(**kw), store, kb(), None, clock_ns=clock, now=lambda: FIXED_NOW)
    return make


def finish_all(brain):
    """The voice reports every say finished."""
    for say_id in list(brain.speaking):
        brain.on_voice_done(say_id, "finished", True)


def ask(brain, text, turn="t1", confidence=0.9, speech_end_ns=1, transcript_ns=2, end_tentative=False):
    """A transcript, with open questions answered synchronously (as the service does off the loop)."""
    out = []
    for item in brain.on_transcript(turn, text, confidence, speech_end_ns, transcript_ns, end_tentative=end_tentative):
        if isinstance(item, Job):
            out += brain.on_answer(item, brain.think(item))
        else:
            out.append(item)
    return out


def engage(brain, track=1, identity=""):
    out = brain.on_person("arrived", track, identity)
    return out + brain.on_person("engaged", track, identity)


def email(mail_id, subject="Lunch", text="See you at noon.", to=("kiosk@example.org",)):
    return EmailReceived(mail_id=mail_id, sender="carol@example.org", sender_name="Carol", subject=subject, text=text, to=list(to))


def test_greets_a_recognised_visitor_by_name_and_says_goodbye(make):
    brain = make()
    assert says(engage(brain, 1, "alice")) == ["Hello Alice! How can I help you today?"]
    assert replies(brain.on_person("recognised", 1, "alice")) == []  # no second greeting
    finish_all(brain)
    assert says(brain.on_person("left", 1, "")) == ["Goodbye, Alice! Have a nice day."]


def test_unknown_visitor_waits_for_recognition_then_greets_politely(make, clock):
    brain = make(greet_wait_s=1.0)
    assert says(engage(brain, 1)) == []
    clock.advance(0.5)
    assert says(brain.tick()) == []
    assert says(brain.on_person("recognised", 1, "bob_smith")) == ["Hello Bob Smith! How can I help you today?"]
    brain2 = make(greet_wait_s=1.0)
    engage(brain2, 2)
    clock.advance(1.1)
    assert says(brain2.tick()) == ["Hello, welcome! I'm Ada. How can I help you?"]


def test_passer_by_is_neither_greeted_nor_heard(make, clock):
    brain = make()
    assert brain.on_person("arrived", 1, "") == []
    clock.advance(5)
    assert says(brain.tick()) == []
    assert ask(brain, "what time is it") == []
    assert brain.counters["ignored_nobody_engaged"] == 1
    assert brain.on_person("left", 1, "") == []  # never greeted: no goodbye


def test_time_date_help_and_smalltalk(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    assert says(ask(brain, "What time is it?")) == ["It's 3:05 PM."]
    finish_all(brain)
    assert says(ask(brain, "what's the date")) == ["Today is Tuesday, the 4th of March 2025."]
    finish_all(brain)
    assert "send a message to Bob Smith" in says(ask(brain, "help"))[0]
    finish_all(brain)
    assert says(ask(brain, "thank you")) == ["You're welcome!"]


def test_knowledge_answers_by_meaning_and_falls_back_gracefully(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    out = ask(brain, "is there somewhere I can get a coffee")
    assert says(out) == ["The cafe is on the first floor, above the main entrance. It serves coffee and light lunches."]
    assert replies(out)[0].skill == "knowledge" and replies(out)[0].person == "Alice"
    finish_all(brain)
    out = ask(brain, "what is the capital of france")
    assert replies(out)[0].skill == "fallback" and "I don't know" in says(out)[0] and "email someone" in says(out)[0]


def test_fallback_offers_to_email_the_question_to_the_contact(make):
    brain = make(fallback_contact="reception")
    engage(brain, 1, "alice")
    finish_all(brain)
    assert says(ask(brain, "who won the football last night")) == ["I'm sorry, I don't know that. Shall I email your question to Reception?"]
    finish_all(brain)
    out = ask(brain, "yes please", turn="t2")
    (send,) = of_type(out, EmailSend)
    assert send.to == ["reception@example.org"] and "A visitor asked: who won the football last night" in send.body
    assert "Alice" in send.body and brain.store.outgoing()[0].send_id == send.send_id


def test_send_a_message_confirmed_by_voice(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    out = ask(brain, "send a message to bob saying the parcel has arrived")
    assert says(out) == ["I'll send this to Bob Smith: the parcel has arrived. Shall I send it? Please say yes or no."]
    assert of_type(out, EmailSend) == []
    finish_all(brain)
    assert says(ask(brain, "banana", turn="t2")) == ["Sorry, was that a yes or a no?"]
    finish_all(brain)
    out = ask(brain, "yes", turn="t3")
    (send,) = of_type(out, EmailSend)
    assert send.to == ["bob@example.org"] and send.body.startswith("The parcel has arrived") and "by Alice" in send.body
    assert says(out) == ["Done, I'm sending it to Bob Smith."]
    # The email service confirms; the outbox empties and nothing is re-sent.
    assert brain.outbox() and brain.on_email_result(send.send_id, True) == [] and brain.outbox() == []


def test_send_declined_asks_for_body_and_unknown_names(make):
    brain = make()
    engage(brain, 1)
    finish_all(brain)
    assert says(ask(brain, "send a message to reception")) == ["What should the message to Reception say?"]
    finish_all(brain)
    assert says(ask(brain, "no I want to come back tomorrow", turn="t2"))[0].startswith("I'll send this to Reception: no I want")
    finish_all(brain)
    assert says(ask(brain, "no", turn="t3")) == ["OK, I won't send it."]
    assert brain.store.outgoing() == []
    finish_all(brain)
    assert says(ask(brain, "send a message to zebulon saying hi", turn="t4")) == [
        "Sorry, I don't have an address for zebulon. I can send messages to Bob Smith and Reception."
    ]


def test_confirmation_expires(make, clock):
    brain = make(confirm_timeout_s=5)
    engage(brain, 1)
    ask(brain, "send a message to bob saying hi")
    finish_all(brain)
    clock.advance(6)
    brain.tick()
    assert of_type(ask(brain, "yes", turn="t2"), EmailSend) == []


def test_mail_is_acked_after_storing_and_delivered_to_the_recognised_person(make, clock):
    brain = make()
    out = brain.on_email(email("m1", subject="For Alice: lunch"))
    assert of_type(out, EmailAck) == [EmailAck(mail_id="m1")]
    assert of_type(brain.on_email(email("m1", subject="For Alice: lunch")), EmailAck)  # redelivery acked again, stored once
    assert brain.counters["mail_redelivered"] == 1
    engage(brain, 1, "alice")
    finish_all(brain)
    clock.advance(0.3)
    out = brain.tick()
    assert says(out) == ["Alice, you have a message from Carol. It's about lunch. See you at noon."]
    # Interrupted: stays pending, not repeated unasked, read again on request.
    brain.on_voice_done(next(iter(brain.speaking)), "interrupted", False)
    clock.advance(0.3)
    assert says(brain.tick()) == []
    out = ask(brain, "any messages for me?")
    assert "See you at noon" in says(out)[0]
    finish_all(brain)
    finish_all(brain)
    assert brain.store.pending_for(["alice"]) == []
    assert says(ask(brain, "any messages for me", turn="t2")) == ["No new messages for you, Alice."]


def test_mail_arriving_during_a_visit_is_delivered_at_the_next_quiet_moment(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    brain.on_email(email("m1", to=["kiosk+alice@example.org"]))
    clock.advance(0.3)
    assert says(brain.tick()) == []  # still greeting
    finish_all(brain)
    clock.advance(0.3)
    assert "Carol" in says(brain.tick())[0]


def test_unknown_visitor_cannot_read_mail(make):
    brain = make()
    brain.on_email(email("m1", subject="For Alice: secret"))
    engage(brain, 1)
    assert says(ask(brain, "any messages for me")) == ["I'm sorry, I don't recognise you, so I can't check messages for you."]


def test_announcements_are_spoken_when_someone_is_present(make, clock):
    brain = make()
    brain.on_email(email("a1", subject="Fire drill", text="At three o'clock today."))
    clock.advance(0.3)
    assert says(brain.tick()) == []  # nobody here
    brain.on_person("arrived", 1, "")
    clock.advance(0.3)
    assert says(brain.tick()) == ["An announcement from Carol: Fire drill. At three o'clock today."]
    finish_all(brain)
    clock.advance(0.3)
    assert says(brain.tick()) == []  # spoken once


def test_an_announcement_the_voice_could_not_speak_is_retried_later_not_in_a_loop(make, clock):
    brain = make(announcement_retry_s=30.0)
    brain.on_email(email("a1", subject="Fire drill", text="At three o'clock today."))
    brain.on_person("arrived", 1, "")
    clock.advance(0.3)
    assert len(says(brain.tick())) == 1
    for say_id in list(brain.speaking):
        brain.on_voice_done(say_id, "failed", True)  # the speaker is gone
    for _ in range(10):
        clock.advance(2.0)
        assert says(brain.tick()) == []
    clock.advance(10.5)
    assert says(brain.tick()) == ["An announcement from Carol: Fire drill. At three o'clock today."]


def test_store_failure_means_no_ack(make):
    brain = make()
    brain.store.close()
    assert brain.on_email(email("m1")) == []
    assert brain.counters["store_errors"] == 1


def test_barge_in_stops_the_voice_and_drops_the_old_answer(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    ask(brain, "where are the toilets")
    out = brain.on_speech_started(during_playback=True)
    assert of_type(out, Stop) == [Stop(reason="barge-in")] and not brain.is_speaking
    # A slow answer overtaken by a new utterance is dropped.
    (job,) = brain.on_transcript("t2", "where can I park", 0.9, 1, 2)
    brain.on_speech_started(during_playback=False)
    assert brain.on_answer(job, brain.think(job)) == []
    assert brain.on_speech_started(during_playback=False) == []  # quiet and not speaking: nothing to stop


def test_speech_when_nobody_engaged_is_not_a_barge_in(make):
    brain = make()
    brain.on_email(email("a1"))
    brain.on_person("arrived", 1, "")
    brain.tick()
    assert brain.is_speaking and brain.on_speech_started(during_playback=True) == []


def test_filler_when_the_answer_is_slow(make, clock):
    brain = make(filler_after_s=0.7)
    engage(brain, 1, "alice")
    finish_all(brain)
    (job,) = brain.on_transcript("t1", "where are the toilets", 0.9, 1, 2)
    clock.advance(0.5)
    assert says(brain.tick()) == []
    clock.advance(0.25)
    out = brain.tick()
    assert says(out) == ["Let me see."] and replies(out)[0].skill == "filler"
    clock.advance(1)
    assert says(brain.tick()) == []  # once
    assert "toilets" in says(brain.on_answer(job, brain.think(job)))[0]


def test_person_leaving_mid_answer_stops_it_and_says_goodbye(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    ask(brain, "how do I get to the train station")
    assert brain.is_speaking
    out = brain.on_person("left", 1, "")
    assert of_type(out, Stop) == [Stop(reason="visitor left")]
    assert says(out) == ["Goodbye, Alice! Have a nice day."]
    # Leaving while the answer is still being prepared: it is dropped.
    engage(brain, 2, "bob_smith")
    finish_all(brain)
    (job,) = brain.on_transcript("t2", "where is the cafe", 0.9, 1, 2)
    brain.on_person("left", 2, "")
    assert brain.on_answer(job, brain.think(job)) == []


def test_two_people_each_greeted_and_the_first_is_the_one_served(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    clock.advance(0.1)
    assert says(engage(brain, 2, "bob_smith")) == ["Hello Bob Smith! How can I help you today?"]
    finish_all(brain)
    brain.on_email(email("m1", subject="For Bob: hi"))
    out = ask(brain, "any messages for me")
    assert says(out) == ["No new messages for you, Alice."]
    finish_all(brain)
    # Alice leaves: Bob is served now, and Bob's message reaches him.
    brain.on_person("left", 1, "")
    finish_all(brain)
    assert "message from Carol" in says(ask(brain, "any messages for me", turn="t2"))[0]
    # Bob disengages: nobody is listened to any more.
    brain.on_person("disengaged", 2, "")
    assert ask(brain, "what time is it", turn="t3") == []


def test_each_utterance_goes_to_the_visitor_the_camera_saw_speaking(make, clock):
    brain = make()
    brain.on_email(email("m1", subject="For Alice: the key code", text="It is 4711."))
    brain.on_email(email("m2", subject="For Alice: lunch", text="Noon."))
    engage(brain, 1, "alice")
    clock.advance(0.1)
    engage(brain, 2)  # an unknown visitor beside her
    finish_all(brain)
    # The unknown visitor speaks (the camera saw track 2's mouth move with the sound): no mail for them.
    brain.on_speaker(2, 9_000)
    out = brain.on_transcript("t1", "any messages for me", 0.9, 12_000, 12_500, 10_000)
    assert says(out) == ["I'm sorry, I don't recognise you, so I can't check messages for you."]
    assert replies(out)[0].track_id == 2 and replies(out)[0].person == ""
    finish_all(brain)
    # Alice speaks: her mail is hers.
    brain.on_speaker(1, 20_000)
    out = brain.on_transcript("t2", "any messages for me", 0.9, 24_000, 24_500, 21_000)
    assert "4711" in says(out)[0] and replies(out)[0].track_id == 1
    finish_all(brain)
    # A face the brain never heard of (no vision.person yet) is someone unknown, not Alice.
    brain.on_speaker(7, 30_000)
    out = brain.on_transcript("t3", "any messages for me", 0.9, 33_000, 33_500, 31_000)
    assert says(out) == ["I'm sorry, I don't recognise you, so I can't check messages for you."]
    # An utterance spanning a switch belongs to whoever spoke most of it.
    brain.on_speaker(1, 40_000)
    brain.on_speaker(2, 41_000)
    out = brain.on_transcript("t4", "any messages for me", 0.9, 45_000, 45_500, 40_000)
    assert says(out) == ["I'm sorry, I don't recognise you, so I can't check messages for you."]
    assert brain.counters["turns_attributed"] == 4


def test_an_utterance_waits_for_the_camera_to_name_its_speaker(make, clock):
    brain = make()
    brain.on_email(email("m1", subject="For Alice: the key code", text="It is 4711."))
    engage(brain, 1, "alice")
    engage(brain, 2)
    finish_all(brain)
    brain.on_speaker(1, clock.ns - 5_000_000_000)  # Alice spoke a while ago
    start = clock.ns
    clock.advance(2.0)
    # The transcript comes before the camera's verdict on this utterance: held, not answered as Alice's.
    assert brain.on_transcript("t1", "any messages for me", 0.9, clock.ns - 300_000_000, clock.ns, start) == []
    clock.advance(0.5)
    assert not any("messages for you" in t for t in says(brain.tick()))  # (greetings and Alice's own mail may come)
    out = brain.on_speaker(2, start + 100_000_000)
    assert says(out) == ["I'm sorry, I don't recognise you, so I can't check messages for you."]
    # No verdict at all within speaker_wait_s: answered as things stand (the last speaker named).
    finish_all(brain)
    start = clock.ns
    clock.advance(2.0)
    assert brain.on_transcript("t2", "any messages for me", 0.9, clock.ns - 300_000_000, clock.ns, start) == []
    clock.advance(1.6)
    assert "I'm sorry, I don't recognise you, so I can't check messages for you." in says(brain.tick())
    assert brain.counters["turns_held_for_speaker"] == 2 and brain.counters["turns_speaker_wait_expired"] == 1
    # The camera last named Alice, and never says who asked this time: her mail is not read on that guess.
    finish_all(brain)
    brain.on_speaker(1, clock.ns)
    clock.advance(5.0)
    start = clock.ns
    clock.advance(2.0)
    assert brain.on_transcript("t3", "any messages for me", 0.9, clock.ns - 300_000_000, clock.ns, start) == []
    clock.advance(1.6)
    said = says(brain.tick())
    assert not any("4711" in t for t in said) and any("which of you asked" in t for t in said)
    assert brain.counters["messages_withheld_speaker_unsure"] == 1
    # With a verdict naming her, she gets it.
    finish_all(brain)
    start = clock.ns
    clock.advance(2.0)
    assert brain.on_transcript("t4", "any messages for me", 0.9, clock.ns - 300_000_000, clock.ns, start) == []
    assert any("4711" in t for t in says(brain.on_speaker(1, start + 50_000_000)))


def test_a_held_utterance_is_answered_not_dropped_when_the_next_one_comes(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    engage(brain, 2)
    finish_all(brain)
    brain.on_speaker(1, clock.ns - 5_000_000_000)
    start = clock.ns
    clock.advance(2.0)
    assert brain.on_transcript("t1", "what time is it", 0.9, clock.ns - 300_000_000, clock.ns, start) == []
    # A second utterance before the camera's verdict on the first: the first is answered, not lost.
    start2 = clock.ns
    clock.advance(1.0)
    out = brain.on_transcript("t2", "any messages for me", 0.9, clock.ns - 300_000_000, clock.ns, start2)
    assert [r.skill for r in replies(out)] == ["time"] and brain.counters["turns_released_by_next"] == 1
    finish_all(brain)
    # ... and the second waits in its turn, then is answered.
    clock.advance(1.6)
    assert any("messages" in t for t in says(brain.tick()))
    # A revision of the held turn replaces it: one answer, to the whole sentence.
    finish_all(brain)
    start3 = clock.ns
    clock.advance(2.0)
    assert brain.on_transcript("t3", "where is the", 0.9, clock.ns - 300_000_000, clock.ns, start3) == []
    clock.advance(0.5)
    assert brain.on_transcript("t3", "where is the toilet", 0.9, clock.ns - 300_000_000, clock.ns, start3) == []
    assert brain.counters["turns_released_by_next"] == 1


def test_without_a_speaker_the_first_engaged_is_served(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    out = brain.on_transcript("t1", "any messages for me", 0.9, 12_000, 12_500, 10_000)
    assert says(out) == ["No new messages for you, Alice."]
    # The speaker history does not cover an utterance before it: back to the engaged visitor.
    brain.on_speaker(2, 50_000)
    finish_all(brain)
    out = brain.on_transcript("t2", "any messages for me", 0.9, 22_000, 22_500, 20_000)
    assert says(out) == ["No new messages for you, Alice."]


def test_gibberish_silence_and_monologue(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    assert says(ask(brain, "blorp fnarg", confidence=0.05)) == ["Sorry, I didn't catch that. Could you say it again?"]
    finish_all(brain)
    out = ask(brain, "bin blue at f two now", confidence=0.9)
    assert replies(out)[0].skill == "fallback"
    finish_all(brain)
    assert ask(brain, "") == [] and ask(brain, "  ...  ") == []
    assert brain.counters["ignored_silence"] == 2
    monologue = " ".join(["and then we went to the market and bought some apples"] * 40)  # ~2 minutes of speech
    out = ask(brain, monologue)
    assert replies(out)[0].skill == "too-long"


def test_latency_trace_is_completed_by_sound_and_mouth(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    t0 = clock.ns
    out = brain.on_transcript("t9", "what time is it", 0.9, t0 - 300_000_000, t0 - 100_000_000)
    (say_id,) = [o.msg.say_id for o in out if hasattr(o.msg, "say_id")]
    brain.on_utterance(say_id, "u1", t0 + 200_000_000)
    assert brain.on_mouth("other", t0) == []
    (trace,) = brain.on_mouth("u1", t0 + 210_000_000)
    assert trace.turn == "t9" and isinstance(trace.msg, TurnTrace)
    m = trace.msg
    assert (m.speech_end_ns, m.transcript_ns, m.reply_ns, m.first_sound_ns, m.first_mouth_ns) == (
        t0 - 300_000_000, t0 - 100_000_000, t0, t0 + 200_000_000, t0 + 210_000_000)
    assert brain.on_mouth("u1", t0 + 250_000_000) == []  # once


def test_incomplete_trace_is_published_after_the_timeout(make, clock):
    brain = make(trace_timeout_s=2)
    engage(brain, 1, "alice")
    brain.on_transcript("t1", "what time is it", 0.9, 5, 6)
    clock.advance(2.5)
    (trace,) = of_type(brain.tick(), TurnTrace)
    assert trace.reply_ns and trace.first_sound_ns == 0 and trace.first_mouth_ns == 0


def test_voice_that_never_answers_does_not_block_forever(make, clock):
    brain = make()
    engage(brain, 1, "alice")
    assert brain.is_speaking
    clock.advance(30)
    brain.tick()
    assert not brain.is_speaking


def test_phrases_come_from_the_skills_names_and_knowledge(make):
    (out,) = [make().phrases()]
    assert isinstance(out.msg, Phrases)
    phrases = out.msg.phrases
    assert {"what time is it", "send a message to", "any messages for me", "bob smith", "reception", "where are the toilets"} <= set(phrases)
    assert len(phrases) == len(set(phrases))


def test_pending_mail_and_outbox_survive_a_restart(make, tmp_path):
    brain = make()
    brain.on_email(email("m1", subject="For Alice: hi"))
    engage(brain, 1)
    ask(brain, "send a message to bob saying hi")
    ask(brain, "yes", turn="t2")
    brain.store.close()
    again = make()
    assert [o.msg.to for o in again.outbox()] == [["bob@example.org"]]
    assert [m.mail_id for m in again.store.pending_for(["alice"])] == ["m1"]


def test_a_new_question_after_the_fallback_offer_is_simply_answered(make, clock):
    brain = make(fallback_contact="reception")
    engage(brain, 1, "alice")
    finish_all(brain)
    ask(brain, "who won the football last night")
    finish_all(brain)
    brain.on_email(email("a1", subject="Fire drill"))
    clock.advance(0.3)
    assert says(brain.tick()) == []  # a yes/no question is open: no announcement in between
    out = ask(brain, "where are the toilets", turn="t2")
    assert replies(out)[0].skill == "knowledge" and of_type(out, EmailSend) == []
    finish_all(brain)
    clock.advance(0.3)
    assert says(brain.tick())[0].startswith("An announcement")


def test_a_revised_turn_is_answered_as_a_whole(make):
    # Hearing took a pause for the end of the turn ("send a message to bob smith"), the brain asked for
    # the message, then the visitor went on: the same turn comes again with the whole sentence.
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    assert says(ask(brain, "send a message to bob smith", turn="t5")) == ["What should the message to Bob Smith say?"]
    assert of_type(brain.on_speech_started(during_playback=True), Stop)  # the visitor goes on over the question
    out = ask(brain, "send a message to bob smith saying i am running late", turn="t5")
    assert says(out) == ["I'll send this to Bob Smith: i am running late. Shall I send it? Please say yes or no."]
    assert brain.counters["turns"] == 1 and brain.counters["turns_continued"] == 1
    # A new turn is a new turn: here, the answer to the question.
    finish_all(brain)
    assert says(ask(brain, "yes", turn="t6"))[0].startswith("Done, I'm sending it to Bob Smith")
    assert brain.counters["turns"] == 2


def test_a_continued_turn_never_sends_a_message_twice(make):
    brain = make()
    engage(brain, 1, "alice")
    finish_all(brain)
    ask(brain, "send a message to bob smith saying hello", turn="t1")
    finish_all(brain)
    assert says(ask(brain, "yes", turn="t2"))[0].startswith("Done")
    finish_all(brain)
    out = ask(brain, "yes please send it now", turn="t2")  # "yes ... please send it now": the same turn, revised
    assert not of_type(out, EmailSend) and brain.counters["emails_requested"] == 1


def test_an_answer_starts_no_sooner_than_the_gap_after_the_end_of_speech(make, clock):
    # A visitor who pauses mid-sentence ("I need a taxi | to the station") must not be talked over: the answer to
    # the first part is held until the gap after their end of speech, and speech resuming before then stops it.
    brain = make(answer_gap_ms=600)
    greeting = engage(brain, 1, "alice")
    assert [s.not_before_ns for s in of_type(greeting, Say)] == [0]  # nothing said by the visitor: no hold
    finish_all(brain)
    end = clock() - 250_000_000  # the final came 250 ms after the end of speech
    out = ask(brain, "where are the toilets", "t7", speech_end_ns=end, transcript_ns=clock())
    assert [s.not_before_ns for s in of_type(out, Say)] == [end + 600_000_000]
    clock.advance(0.2)
    assert of_type(brain.on_speech_started(during_playback=False), Stop)  # they went on: unheard, it stops
    clock.advance(1.0)
    out = ask(brain, "where are the toilets on the second floor", "t7", speech_end_ns=clock() - 250_000_000, transcript_ns=clock())
    assert len(says(out)) == 1 and replies(out)[0].skill == "knowledge"
    assert [s.not_before_ns for s in of_type(out, Say)] == [clock() - 250_000_000 + 600_000_000]
    assert brain.counters["turns"] == 1 and brain.counters["turns_continued"] == 1


def test_a_tentative_end_holds_the_answer_longer(make, clock):
    # "Is there a place" with the voice still up: hearing ends the turn but calls it tentative; the answer waits the
    # longer gap, so the visitor who goes on 800 ms later stops it unheard, and the whole sentence is answered.
    brain = make(answer_gap_ms=600, answer_gap_tentative_ms=1000)
    engage(brain, 1, "alice")
    finish_all(brain)
    end = clock() - 250_000_000
    out = ask(brain, "where are the toilets", "t3", speech_end_ns=end, transcript_ns=clock(), end_tentative=True)
    assert [s.not_before_ns for s in of_type(out, Say)] == [end + 1000_000_000]
    clock.advance(0.55)  # 800 ms after the end of speech: past the ordinary gap, inside the tentative one
    assert of_type(brain.on_speech_started(during_playback=False), Stop)
    clock.advance(1.0)
    out = ask(brain, "where are the toilets on the second floor", "t3", speech_end_ns=clock() - 250_000_000, transcript_ns=clock())
    assert [s.not_before_ns for s in of_type(out, Say)] == [clock() - 250_000_000 + 600_000_000]  # a sure end: the short gap
    # never shorter than the ordinary gap, whatever the tentative one says
    short = make(answer_gap_ms=600, answer_gap_tentative_ms=0)
    engage(short, 1, "alice")
    finish_all(short)
    out = ask(short, "what time is it", "t4", speech_end_ns=end, transcript_ns=clock(), end_tentative=True)
    assert [s.not_before_ns for s in of_type(out, Say)] == [end + 600_000_000]


def test_the_answer_gap_is_never_longer_than_the_gap_from_now(make, clock):
    # An end of speech on a clock ahead of the brain's (a peer's skewed clock) must not hold the answer longer.
    brain = make(answer_gap_ms=600)
    engage(brain, 1, "alice")
    finish_all(brain)
    out = brain.on_transcript("t8", "what time is it", 0.9, clock() + 30_000_000_000, clock())
    assert [s.not_before_ns for s in of_type(out, Say)] == [clock() + 600_000_000]
    off = make(answer_gap_ms=0)
    engage(off, 1, "alice")
    finish_all(off)
    assert [s.not_before_ns for s in of_type(off.on_transcript("t9", "what time is it", 0.9, clock(), clock()), Say)] == [0]
