"""What Piper is given to read: abbreviations, amounts and sentence ends its phonemiser gets wrong."""

from __future__ import annotations

import pytest

from services.voice.tts.piper_text import speakable


@pytest.mark.parametrize(("text", "spoken"), [
    ("Ask Mr. Jones or Mrs. Smith.", "Ask Mister Jones or Missus Smith."),
    ("Ms. Lee and Prof. Brown are here", "Miz Lee and Professor Brown are here."),
    ("Dr Smith is in.", "Doctor Smith is in."),
    ("It is on Baker St. near the park.", "It is on Baker Street near the park."),
    ("Meet me at St. John's Hall!", "Meet me at Saint John's Hall!"),
    ("Room No. 5, vs. room 6.", "Room number 5, versus room 6."),
    ("It costs $5, €3.50 or £12.", "It costs 5 dollars, 3 euros and 50 cents or 12 pounds."),
    ("That is $1,000 or $1.", "That is 1,000 dollars or 1 dollar."),
    ("Tickets are £2.50 each.", "Tickets are 2 pounds 50 each."),
    ("Open Mon. to Fri. only.", "Open Monday to Friday only."),
    ("Tea, coffee, etc. Then go upstairs.", "Tea, coffee, etcetera. Then go upstairs."),
    ("It takes approx. 3 mins.", "It takes approximately 3 minutes."),
    ("We met on Dec. 3", "We met on December 3."),
])
def test_abbreviations_and_amounts_are_written_out(text, spoken):
    assert speakable(text) == spoken


@pytest.mark.parametrize("text", [
    "I sat. Then the sun came out.",  # plain words that look like abbreviations, lower case
    "MS Teams works, OK?",  # an upper-case acronym is not a title
    "Please wait...", "Goodbye!", "Is that right?", "Turn left (by the lifts)",
])
def test_ordinary_text_is_left_alone(text):
    assert speakable(text).rstrip(".") == text.rstrip(".")


def test_a_piece_without_an_end_mark_gets_one():
    assert speakable("Goodbye, and have a lovely afternoon") == "Goodbye, and have a lovely afternoon."
    assert speakable("The desk is on your right  ") == "The desk is on your right."
    assert speakable("Really?") == "Really?"


def test_piper_reads_a_title_inside_the_sentence():
    """Piper's own phonemiser ends a sentence at "Mr." (two sentences, a fall and a pause before the
    name); after ``speakable`` it is one sentence, and "$5" is "five dollars", not "dollar five"."""
    pytest.importorskip("piper", reason="Piper needs the voice extra (piper-tts)")
    from assistant.config.schema import VoicePiperSettings as PiperSettings
    from services.voice.tts.piper_engine import PiperEngine

    engine = PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0, alignments=False))
    files = engine.load()
    voice = engine._loaded(files).voice
    raw = "Please ask Mr. Jones, it costs $5."
    assert len(voice.phonemize(raw)) == 2, "Piper itself splits at the title's period"
    fixed = voice.phonemize(speakable(raw))
    assert len(fixed) == 1
    said = "".join(fixed[0])
    assert "mˈɪstɚ dʒˈoʊnz" in said
    assert said.index("fˈaɪv") < said.index("dˈɑːlɚz")
