"""Intents, address book, yes/no, speakable mail, recipients, knowledge files, the mail store."""

from pathlib import Path

import pytest

from services.brain import skills
from services.brain.inbox import announce, read_out, recipient_of
from services.brain.knowledge import KnowledgeBase, KnowledgeError, load_entries
from services.brain.mailstore import MailStore, Outgoing, StoredMail
from services.brain.text import display_name, same_person, speakable, yes_or_no

from .brain_helpers import FIXED_NOW, embedder

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, kind, name, body", [
    ("What time is it?", "time", "", ""),
    ("what's the date today", "date", "", ""),
    ("What day is it", "date", "", ""),
    ("help", "help", "", ""),
    ("what can you do", "help", "", ""),
    ("Send a message to Bob saying I'll be late", "send", "bob", "i'll be late"),
    ("please send an email to bob smith that the meeting moved", "send", "bob smith", "the meeting moved"),
    ("send a message to reception", "send", "reception", ""),
    ("tell bob that lunch is ready", "send", "bob", "lunch is ready"),
    ("any messages for me", "messages", "", ""),
    ("do I have any new mail?", "messages", "", ""),
    ("read my messages", "messages", "", ""),
    ("hello", "hello", "", ""),
    ("thank you very much", "thanks", "", ""),
    ("goodbye", "bye", "", ""),
    ("where are the toilets", "open", "", ""),
    ("bin blue at f two now", "open", "", ""),
    ("", "open", "", ""),
])
def test_intents(text, kind, name, body):
    assert skills.parse(text) == skills.Intent(kind, name, body)


def test_address_book_forgives_stt_spelling():
    book = skills.AddressBook({"bob_smith": "bob@example.org", "Reception": "desk@example.org"})
    assert book.find("Bob Smith") == ("Bob Smith", "bob@example.org")
    assert book.find("bob") == ("Bob Smith", "bob@example.org")
    assert book.find("reseption") == ("Reception", "desk@example.org")
    assert book.find("zebulon") is None and book.find("") is None
    assert book.name_for_address("DESK@example.org ") == "reception"
    assert sorted(book.names()) == ["Bob Smith", "Reception"]


def test_time_date_and_help_texts():
    assert skills.say_time(FIXED_NOW) == "It's 3:05 PM."
    assert skills.say_time(FIXED_NOW.replace(hour=0, minute=7)) == "It's 12:07 AM."
    assert skills.say_date(FIXED_NOW) == "Today is Tuesday, the 4th of March 2025."
    assert skills.say_date(FIXED_NOW.replace(day=11)).endswith("the 11th of March 2025.")
    assert skills.say_date(FIXED_NOW.replace(day=22)).endswith("the 22nd of March 2025.")
    assert "send a message to Bob" in skills.say_help([], ["Bob"])


@pytest.mark.parametrize("text, expected", [
    ("yes", True), ("Yes please.", True), ("yeah send it", True), ("go ahead", True),
    ("no", False), ("No thanks", False), ("cancel that", False), ("never mind", False),
    ("yes no", None), ("purple", None), ("", None),
    ("where are the toilets please", None), ("what can you do", None), ("do it", True),
])
def test_yes_or_no(text, expected):
    assert yes_or_no(text) is expected


def test_names():
    assert display_name("alice_smith") == "Alice Smith" and display_name("McKay") == "McKay"
    assert same_person("alice_smith", "alice") and same_person("Alice", "alice smith")
    assert not same_person("alice", "bob") and not same_person("", "bob")


def test_speakable_mail_drops_quotes_signature_urls_and_control_chars():
    text = "Hi Alice,\x00 lunch at noon? See https://example.org/menu\n> old quoted text\n-- \nBob\nCEO"
    assert speakable(text, 300) == "Hi Alice, lunch at noon? See (link)"
    long = speakable("word " * 500, 50)
    assert len(long) < 90 and long.endswith("The rest is in the email.")


@pytest.mark.parametrize("to, subject, expected", [
    (["kiosk+alice@example.org"], "Lunch", ("alice", "Lunch")),
    (["kiosk@example.org"], "For Alice Smith: your parcel", ("alice smith", "your parcel")),
    (["kiosk@example.org"], "ATTN bob - call me", ("bob", "call me")),
    (["bob@example.org"], "Hello", ("bob smith", "Hello")),
    (["kiosk@example.org"], "To whom it may concern: fire drill at 3", ("", "To whom it may concern: fire drill at 3")),
    (["kiosk@example.org"], "Fire drill at 3", ("", "Fire drill at 3")),
    ([], "", ("", "")),
])
def test_recipient_of(to, subject, expected):
    book = skills.AddressBook({"bob_smith": "bob@example.org"})
    assert recipient_of(to, subject, book) == expected


def _mail(i, recipient="alice", body="See you at noon.", subject="Lunch", sender_name="Bob"):
    return StoredMail(f"m{i}", recipient, "bob@example.org", sender_name, subject, body, 1000.0 + i)


def test_read_out_and_announce():
    assert read_out([_mail(1)], 300) == "You have a message from Bob. It's about Lunch. See you at noon."
    many = read_out([_mail(i, sender_name=n) for i, n in enumerate(["Bob", "Carol", "Bob", "Dan"])], 300)
    assert many.startswith("You have 4 messages, from Bob, Carol and Dan.") and "1 more" in many
    assert announce(_mail(1, recipient="", subject="Fire drill", body="At 3 pm."), 300) == "An announcement from Bob: Fire drill. At 3 pm."
    assert "The message is empty." in read_out([_mail(1, body="")], 300)


def test_mail_store_survives_reopen_and_ignores_redelivery(tmp_path):
    path = tmp_path / "state" / "brain.sqlite"
    store = MailStore(path, clock=lambda: 2000.0)
    assert store.store(_mail(1)) and not store.store(_mail(1))
    store.store(_mail(2, recipient=""))
    store.queue(Outgoing("s1", ("bob@example.org",), "Hi", "Body"))
    store.close()
    store = MailStore(path, clock=lambda: 2000.0)
    assert [m.mail_id for m in store.pending_for(["alice"])] == ["m1"]
    assert store.recipients() == ["alice"]
    assert [m.mail_id for m in store.pending_announcements(max_age_s=5000)] == ["m2"]
    assert store.pending_announcements(max_age_s=10) == []  # too old
    assert store.outgoing() == [Outgoing("s1", ("bob@example.org",), "Hi", "Body")]
    store.mark_done(["m1"])
    assert store.finish("s1", "sent") and not store.finish("s1", "sent") and not store.finish("nope", "failed")
    assert store.pending_for(["alice"]) == [] and store.outgoing() == []


def test_knowledge_file_errors_name_the_file_and_entry(tmp_path):
    cases = {
        "bad.toml": ("[[entry]\nq=", "not valid toml"),
        "noanswer.toml": ("[[entry]]\nquestions = ['a']\n", "entry 1 needs an 'answer'"),
        "noq.toml": ("[[entry]]\nquestions = []\nanswer = 'x'\n", "entry 1 needs 'questions'"),
        "notlist.toml": ("entry = 3\n", "expected a list of entries"),
        "bad.yaml": ("- questions: [a\n", "not valid yaml"),
        "badentry.yaml": ("- just a string\n", "entry 1 is not a table"),
        "binary.toml": ("\udcff", "not valid toml"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(KnowledgeError) as err:
            load_entries(path)
        assert expected in str(err.value) and name in str(err.value) and "\n" not in str(err.value), (name, str(err.value))
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_entries(tmp_path / "missing.toml")


def test_yaml_and_toml_give_the_same_entries(tmp_path):
    (tmp_path / "kb.yaml").write_text("- questions: ['Where is the cafe?', I want coffee]\n  answer: First floor.\n- question: Wifi?\n  answer: Ask the desk.\n")
    (tmp_path / "kb.toml").write_text("[[entry]]\nquestions = ['Where is the cafe?', 'I want coffee']\nanswer = 'First floor.'\n[[entry]]\nquestion = 'Wifi?'\nanswer = 'Ask the desk.'\n")
    assert load_entries(tmp_path / "kb.yaml") == load_entries(tmp_path / "kb.toml")


def test_sample_knowledge_base_matches_by_meaning_with_a_threshold():
    kb = KnowledgeBase.from_file(REPO / "services" / "brain" / "knowledge.toml", embedder(), threshold=0.5)
    hits = {
        "can I use the toilet": "toilets",
        "when do you close": "open from nine",
        "wifi code please": "guest wifi",
        "how do i connect to the internet": "guest wifi",
        "where should I put my car": "parking",
        "how do I get to the station": "train station",
    }
    for question, words in hits.items():
        m = kb.answer(question)
        assert m is not None and words in m.entry.answer.lower(), (question, kb.best(question))
    for question in ["what is the capital of france", "bin blue at f two now", "tell me a joke", "my name is bob"]:
        assert kb.answer(question) is None, (question, kb.best(question))
    assert kb.best("   ") is None
    assert "Where are the toilets?" in kb.phrases()
