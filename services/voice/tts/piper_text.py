"""Text as Piper should read it: abbreviations, currency and sentence ends that its phonemiser gets wrong.

Piper turns text into phonemes with espeak-ng and cuts the text into sentences at every period
followed by a space, so an abbreviation's period ends a sentence in the middle of a phrase: "Ask
Mr. Jones" is spoken as two sentences ("Ask mister." then "Jones."), each with its falling end and
its pause. Some abbreviations it does not know at all ("Ms." is spelled out "M S", "St." is read
"sent", "vs." "V S"), and amounts come out backwards ("$5" is "dollar five", "£12" "pound
twelve"). ``speakable`` rewrites those few forms into words before Piper sees the text; anything
else is left to Piper. A piece of text without an end mark gets a period, so it ends with a
sentence's fall instead of hanging.
"""

from __future__ import annotations

import re

#: Titles before a name, with or without the period ("Mr. Jones", British "Dr Smith"), as spoken.
_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor", "Mt": "Mount",
           "Capt": "Captain", "Sgt": "Sergeant"}
#: Abbreviations written with a period, as spoken; lower case ones also match capitalised.
_WORDS = {"approx": "approximately", "vs": "versus", "dept": "department", "Ave": "Avenue", "Rd": "Road",
          "tel": "telephone", "ext": "extension", "etc": "etcetera", "fig": "figure", "min": "minutes",
          "mins": "minutes", "hr": "hour", "hrs": "hours", "Jr": "Junior", "Sr": "Senior",
          "Jan": "January", "Feb": "February", "Aug": "August", "Sep": "September", "Sept": "September",
          "Oct": "October", "Nov": "November", "Dec": "December", "Mon": "Monday", "Tue": "Tuesday",
          "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday", "Thur": "Thursday", "Thurs": "Thursday",
          "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday"}
_WORD_FORMS = {form: spoken for key, spoken in _WORDS.items()
               for form in ({key, key.capitalize()} if key.islower() else {key})}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}

_TITLE = re.compile(r"\b(" + "|".join(_TITLES) + r")\b\.?(?=\s+[A-Z])")
# "approx. 3", "Jan. 5th": only with the period (without one some are plain words: "min", "Sun").
# The period stays where it also ends the sentence ("..., tea, etc. Then" / at the end).
_ABBREV = re.compile(r"\b(" + "|".join(sorted(_WORD_FORMS, key=len, reverse=True)) + r")\.(\s+(?=[A-Z])|\s*$)?")
# "St." before a name is Saint ("St. John's"), after one it is Street ("Baker St.").
_SAINT = re.compile(r"\bSt\.?(?=\s+[A-Z])")
_STREET = re.compile(r"(?<=[A-Za-z])\s+St\.?(?=\s|$|[,;:!?])")
# "No. 5" / "no. 5" is "number 5".
_NUMBER = re.compile(r"\b[Nn]o\.\s*(?=\d)")
# "$5", "£12.50", "€3", "$1,000", "$5m" -> "5 dollars", "12 pounds 50", ...
_AMOUNT = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?(?!\d)")


def _amount(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole, cents = m.group(2), m.group(3)
    out = f"{whole} {one if whole == '1' else many}"
    if cents and cents != "00":
        n = int(cents)
        out += f" {n}" if m.group(1) == "£" else f" and {n} {sub_one if n == 1 else sub_many}"
    return out


def _title(m: re.Match) -> str:
    return _TITLES[m.group(1)]


def _word(m: re.Match) -> str:
    spoken = _WORD_FORMS[m.group(1)]
    if m.group(1)[0].isupper():
        spoken = spoken[0].upper() + spoken[1:]
    return spoken + ("." + m.group(2) if m.group(2) is not None else "")


def speakable(text: str) -> str:
    """``text`` with the abbreviations and amounts Piper misreads written out, ending in an end mark."""
    text = _AMOUNT.sub(_amount, text)
    text = _TITLE.sub(_title, text)
    text = _SAINT.sub("Saint", text)
    text = _STREET.sub(" Street", text)
    text = _NUMBER.sub("number ", text)
    text = _ABBREV.sub(_word, text)
    stripped = text.rstrip()
    if stripped and (stripped[-1].isalnum() or stripped[-1] in "'\"’”)%"):
        text = stripped + "."
    return text
