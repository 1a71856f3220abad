"""People's names as the kiosk compares them: one key for a face file, a mail's recipient and a spoken name.

``"Alice_Smith"``, ``"alice smith"`` and ``"Alice-Smith"`` are the same person. Used by the brain
(who a mail is for, who is asking) and by ``assistant forget`` (which face, mail and cache to drop):
it lives on the assistant floor so both reach it without one service importing another.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w' ]+")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: the form intents are matched on."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return _SPACE.sub(" ", _NOT_WORD.sub(" ", text)).strip()


def name_key(name: str) -> str:
    """Key a person's name is compared on: ``"Alice_Smith"`` and ``"alice smith"`` are the same."""
    return normalise(name.replace("_", " ").replace("-", " ").replace(".", " "))
