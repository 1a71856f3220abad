"""Reply text -> speakable pieces: cleaning, sentence splitting and chunking of long text.

A reply is spoken sentence by sentence so the first sentence can play while the rest are
synthesised. The splitter is tuned for what a conversational reply contains: abbreviations
(``Dr. Smith``, ``e.g.``), initials, numbers and times (``3.5``, ``10 a.m.``), ellipses, quotes,
bullet lists and emoji. Emoji and pictographs are removed: engines either skip them or read
their Unicode names aloud ("grinning face"), and neither sounds right from a kiosk.
"""

from __future__ import annotations

import re
import unicodedata

#: Words that end with a period without ending the sentence (lower case, without the period).
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e", "cf",
    "approx", "no", "nos", "vol", "fig", "inc", "ltd", "co", "corp", "dept", "est", "min", "max",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "wed", "thu", "fri", "sat", "sun", "a.m", "p.m", "u.s", "u.k", "ph.d", "tel", "ave",
})

# A sentence end: terminal punctuation (with closing quotes/brackets), then whitespace.
_END = re.compile(r"""([.!?…。！？]+["'”’»)\]]*)(\s+)""")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_CLAUSE = re.compile(r"(?<=[,;:—–])\s+")
# Emoji modifiers and joiners that are not category So but belong to emoji sequences.
_EMOJI_PARTS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


def strip_emoji(text: str) -> str:
    """Remove emoji, pictographs and their joiners/modifiers; keep letters of every script."""
    out = []
    for ch in text:
        cp = ord(ch)
        if ch in _EMOJI_PARTS or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
            continue  # joiner, variation selector, skin tone, tag characters (flags)
        if 0x1F1E6 <= cp <= 0x1F1FF:
            continue  # regional indicators (flags)
        if unicodedata.category(ch) in ("So", "Cs", "Co", "Cn"):
            out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


def clean(text: str) -> str:
    """Text an engine can read: emoji removed, bullets and control characters gone, spaces folded."""
    text = unicodedata.normalize("NFC", text)
    text = strip_emoji(text)
    text = "".join(ch if (unicodedata.category(ch)[0] != "C" or ch == "\n") else " " for ch in text)
    text = re.sub(r"([。！？])(?=\S)", r"\1 ", text)  # CJK sentence ends carry no space
    # Newlines: a blank line or a list item starts a new paragraph (read as its own sentence);
    # other line breaks are hard wrapping inside a sentence.
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        bullet = re.match(r"^(?:[-*•]|\d+[.)])\s+", line)
        if not line or bullet:
            if current:
                paragraphs.append(" ".join(current))
            current = []
            if bullet:
                line = line[bullet.end():] if line[0] in "-*•" else line
        if line:
            current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


def _is_abbreviation(before: str) -> bool:
    """Whether the text ending just before a period ends with an abbreviation or an initial."""
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip("(\"'“‘").lower()
    if word in ABBREVIATIONS:
        return True
    # Single-letter initials ("J. R. R. Tolkien") and dotted acronyms ("U.S.A").
    return bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", word))


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into sentences; never loses a word (joined, they give back the text)."""
    sentences: list[str] = []
    for para in text.split("\n"):
        para = " ".join(para.split())
        start = 0
        for m in _END.finditer(para):
            punct = m.group(1)
            body = para[start:m.start()]
            nxt = para[m.end():m.end() + 1]
            if punct == "." and (_is_abbreviation(body) or body.strip().isdigit()):
                continue  # "Dr. Smith", "1. Go left"
            # "costs 3. million" is odd, but "at 10. Then" ends: only a lower-case word continues.
            if punct.startswith(".") and nxt.islower():
                continue
            sentence = para[start:m.end(1)].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        rest = para[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Break a sentence longer than ``max_chars`` at clause punctuation, then at spaces."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE.split(sentence):
        while len(clause) > max_chars:
            cut = clause.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars  # one enormous "word": hard cut
            head, clause = clause[:cut].strip(), clause[cut:].strip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if current and len(current) + 1 + len(clause) > max_chars:
            pieces.append(current)
            current = clause
        else:
            current = f"{current} {clause}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def plan_reply(text: str, max_chars: int = 250) -> list[str]:
    """The pieces to synthesise for a reply, in order: cleaned, split into sentences, long ones cut.

    Pieces with nothing speakable (only punctuation left after removing emoji) are dropped; an
    empty list means there is nothing to say.
    """
    pieces: list[str] = []
    for sentence in split_sentences(clean(text)):
        for piece in _split_long(sentence, max_chars):
            if any(ch.isalnum() for ch in piece):
                pieces.append(piece)
    return pieces
