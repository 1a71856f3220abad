"""Sentence splitting and chunking of real reply text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from services.voice.text import clean, plan_reply, split_sentences


def test_abbreviations_numbers_and_times_do_not_split():
    text = ("Hello Dr. Smith! The meeting is at 10 a.m. on Jan. 5th in room 3.14, e.g. the big one. "
            "It costs $3.50 per person, i.e. cheap. J. R. R. Tolkien would approve... Would you?")
    assert plan_reply(text) == [
        "Hello Dr. Smith!",
        "The meeting is at 10 a.m. on Jan. 5th in room 3.14, e.g. the big one.",
        "It costs $3.50 per person, i.e. cheap.",
        "J. R. R. Tolkien would approve...",
        "Would you?",
    ]


def test_quotes_lists_and_paragraphs():
    assert split_sentences(clean('He said "Stop." Then he left.')) == ['He said "Stop."', "Then he left."]
    reply = "Here are the options:\n- the lobby\n- the cafe\n\n1. Go left\n2. Go right.\nThat is\nall."
    assert plan_reply(reply) == ["Here are the options:", "the lobby", "the cafe", "1. Go left", "2. Go right.",
                                 "That is all."]


def test_emoji_are_removed_and_emoji_only_is_nothing():
    assert plan_reply("Great 😀👍🏽 see you! 🇨🇿 👨‍👩‍👧") == ["Great see you!"]
    assert plan_reply("😀 🎉") == [] and plan_reply("") == [] and plan_reply("  \n ") == []


def test_other_scripts():
    assert plan_reply("Ahoj! Jak se máš? 你好。今天好吗？") == ["Ahoj!", "Jak se máš?", "你好。", "今天好吗？"]


def test_five_thousand_characters_are_chunked_without_losing_words():
    text = ("This is a rather long sentence, with clauses; and more words: that go on and on " * 70)[:5000]
    pieces = plan_reply(text, max_chars=200)
    assert all(len(p) <= 200 for p in pieces) and len(pieces) >= 25
    assert " ".join(pieces).split() == text.split()
    one_word = "x" * 5000  # a hostile "word" longer than a piece
    assert "".join(plan_reply(one_word, max_chars=200)) == one_word


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 .,!?;:'\"\n-…")), max_size=600),
       st.integers(min_value=20, max_value=300))
def test_never_loses_or_invents_a_word(text, max_chars):
    pieces = plan_reply(text, max_chars)
    # A single word longer than a piece must be cut; compare the letters, not the word boundaries.
    assert "".join(_words(" ".join(pieces))) == "".join(_words(clean(text).replace("\n", " "))) or not _words(text)
    assert all(len(p) <= max_chars for p in pieces)
