"""End of turn from more than silence: the Smart Turn v3.2 model (audio in, "is the sentence finished?" out).

The ONNX file ships in the ``pipecat-ai`` wheel (BSD-2; installed ``--no-deps``, only the file is
used: pipecat itself is not imported). It reads the last 8 s of the utterance as Whisper-style
log-mel features and returns the probability that the speaker has finished; intonation and the
words' rhythm tell "I would like to ..." from "I would like to leave a message for Maria".
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from pathlib import Path

import numpy as np

from assistant.errors import SetupError

log = logging.getLogger(__name__)

RATE = 16_000
WINDOW = 8 * RATE
MODEL = ("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx")  # package, file in it
INSTALL_HINT = "pip install --no-deps pipecat-ai==1.14.0 (the model file ships in its wheel), or set hearing.end_of_turn = \"silence\""


def pipecat_file(rel: str, what: str, hint: str) -> Path:
    """A model file inside the installed pipecat-ai package (found, not imported); ``SetupError`` names ``what`` is missing."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(f"{what} is missing: pipecat-ai is not installed; {hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise SetupError(f"{what} is missing ({path}); {hint}")
    return path


def model_path() -> Path:
    """The Smart Turn ONNX file inside the installed pipecat-ai package."""
    return pipecat_file(MODEL[1], "the Smart Turn model", INSTALL_HINT)


class SmartTurn:
    """``complete(pcm)``: probability that the utterance in ``pcm`` (16 kHz int16, up to now) is a finished turn."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        path = model_path()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise SetupError(f"the Smart Turn model at {path} could not be loaded ({exc}); {INSTALL_HINT}") from None
        self.features = FeatureExtractor(chunk_length=8)
        self.last_s = 0.0

    def probability(self, pcm: np.ndarray) -> float:
        t = time.perf_counter()
        x = pcm[-WINDOW:].astype(np.float32) / 32768.0
        x = np.pad(x, (WINDOW - len(x), 0))  # the model wants 8 s: silence before a shorter utterance
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        feats = self.features(x, padding=0)[:, :800]
        p = float(np.asarray(self.session.run(None, {"input_features": feats[None].astype(np.float32)})[0]).ravel()[0])
        self.last_s = time.perf_counter() - t
        return p


# Words a finished English sentence does not end on: articles, prepositions, conjunctions,
# possessives, auxiliaries and modals, titles and hesitations ("I would like to ... leave a message").
DANGLING = frozenset("""
a an the to for of in on at with from by about into onto like than as and or but because if that so
my your his her our their its this these those some any every no
is are was were am be been being can could would should will shall may might must do does did have has had
i we they he she it's i'm we're they're i'd i'll we'll you're
want wanted need needed like looking trying going gonna wanna tell ask give send leave call find see meet
mister missus miss mr mrs ms dr doctor professor
um uh er erm ehm hmm mm ah uhm
very really just also then which who whose whom where when while until unless although though
""".split())


AUXILIARIES = frozenset("is are was were am be been can could would should will shall may might must do does did have has had".split())
PRONOUNS = frozenset("i you he she it we they there that this one".split())
_WORD = re.compile(r"[a-z0-9']+")


COPULAS = frozenset("is are was were".split())
WH = frozenset("where what who which how when why whether".split())
SUPERLATIVES = frozenset("nearest closest next quickest fastest shortest cheapest easiest biggest largest smallest".split())
DETERMINERS = frozenset("the a an my your his her our their".split())


TRAILING = ("...", "…", ",", "-", ":", ";")
"""How Whisper writes speech that trails off."""


def words_complete(text: str) -> bool:
    """Do the words so far read as a finished turn? Whisper marks trailing-off speech with "..." or
    a comma; otherwise the last word decides (a sentence does not end on "to", "the", "and", ...)."""
    text = text.strip()
    if not text:
        return True  # nothing understood: waiting would not help
    if text.endswith(TRAILING):
        return False
    words = _WORD.findall(text.lower())
    if len(words) >= 3 and words[-1] == "please" and words[-2] == "you":  # "could you please ..."
        return False
    if len(words) >= 2 and words[-1] in AUXILIARIES and words[-2] in PRONOUNS:  # "than he was", "yes i do"
        return True
    if words[-1] in COPULAS and any(w in WH for w in words[:-3]):  # "... where the meeting room is": an embedded question
        return True
    if len(words) == 3 and words[0] in COPULAS and words[1] in DETERMINERS:  # "is the cafeteria ...": no predicate yet
        return False
    if len(words) >= 2 and words[-2] == "the" and words[-1] in SUPERLATIVES:  # "where is the nearest ...": a noun follows
        return False
    return not words or words[-1] not in DANGLING


REPLIES = frozenset("""
yes yeah yep yup no nope nah okay ok sure right correct exactly fine great thanks
hello hi hey bye goodbye sorry pardon stop start repeat cancel continue help
""".split())
"""Words that make a whole turn on their own: a short answer to the kiosk's question or a command ("Yes.",
"Repeat."). Whisper is often unsure of a lone short word and pocketsphinx mishears it, and Smart Turn has too
little speech to judge; such a turn is finished by its words."""
REPLY_TAILS = ("please", "thanks", "thank you")
"""What may follow a reply word ("Yes please.", "No thank you.")."""


def is_reply(text: str) -> bool:
    """The whole turn is a short reply: a ``REPLIES`` word, or "thank you", with at most a ``REPLY_TAILS`` after it."""
    words = _WORD.findall(text.lower())
    if words[:2] == ["thank", "you"]:
        words = ["thanks", *words[2:]]
    rest = " ".join(words[1:])
    return bool(words) and words[0] in REPLIES and (not rest or rest in REPLY_TAILS)


FINISHED, DOUBTFUL, UNFINISHED = "finished", "doubtful", "unfinished"
SURE = 0.9
"""Whisper's probability of its last word above which its reading of a finished sentence outweighs the partial's."""
FAIRLY_SURE = 0.8
"""Between this and ``SURE``, a partial that trails off under a finished Whisper text makes the turn doubtful."""
UNSURE = 0.5
"""Below this, Whisper's last word is as likely a guess: a fragment it rounded off ("I am looking for" ->
"I am looking forward.", "early for" -> "a little bit further.") looks like this."""


def turn_state(final, partial: str) -> str:
    """How finished the visitor's sentence looks after the first pause: ``finished`` (answer now), ``doubtful``
    (wait a little: ``turn_doubt_silence_ms``) or ``unfinished`` (wait up to ``turn_max_silence_ms``).

    ``final`` is Whisper's result for the audio so far (decoded at the pause; None when there is none) and
    ``partial`` pocketsphinx's streaming text. Whisper hears far better, so its text leads: trailing off there
    means unfinished. But its language model rounds a fragment off ("My name is John and" -> "My name is John
    N."): then its last word is unsure, and pocketsphinx's partial, which writes what it heard, keeps the
    dangling word. A finished-looking Whisper text is believed when its last word is sure, however the partial
    ends (pocketsphinx often mishears a finished sentence's last content word as "for", "the", "be": that cost
    a 1.3 s wait); the wait is short when one signal is unsure, long when Whisper is unsure and the partial
    trails off.
    """
    if final is None:
        return FINISHED if words_complete(partial) else UNFINISHED
    if is_reply(final.text) and not final.text.strip().endswith(TRAILING):
        return FINISHED
    if not words_complete(final.text):
        return UNFINISHED
    if not final.text.strip():
        return FINISHED if words_complete(partial) else DOUBTFUL
    conf = final.words[-1].confidence if final.words else final.confidence
    partial_done = words_complete(partial)
    if partial_done:
        return FINISHED if conf >= UNSURE else DOUBTFUL
    if conf >= SURE:
        return FINISHED
    return DOUBTFUL if conf >= FAIRLY_SURE else UNFINISHED


FALL_ST = -2.5
"""``words+prosody``: a finished sentence's last voiced frames lie at least this many semitones below the utterance's
median pitch (a declarative fall). Chosen on KIOSK_SPLIT and KIOSK_SPLIT_DEV (bench/lib/sentences.py): espeak/MBROLA
finished sentences end at -6 ... -2.5, their first parts before an SSML pause at -2 ... +3."""
PITCH_MIN_VOICED = 20
"""Voiced 10 ms frames needed before the final pitch is read (a short "yes" has no median to fall from)."""
_PITCH_FRAME, _PITCH_HOP, _PITCH_TAIL_S = 640, 160, 4.0


def final_pitch_st(pcm: np.ndarray) -> float | None:
    """Pitch of the last voiced 50 ms against the median of the last 4 s of voice, in semitones; None when there is
    too little voice to say. Normalised autocorrelation per 40 ms frame (10 ms hop, 70-400 Hz, voiced when its peak
    exceeds 0.5), all frames in one FFT: ~5-10 ms for 4 s of audio."""
    x = np.asarray(pcm[-int(_PITCH_TAIL_S * RATE):], np.float64)
    if len(x) < _PITCH_FRAME:
        return None
    idx = np.arange(0, len(x) - _PITCH_FRAME + 1, _PITCH_HOP)[:, None] + np.arange(_PITCH_FRAME)
    frames = x[idx]
    frames -= frames.mean(axis=1, keepdims=True)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) >= 200
    spec = np.fft.rfft(frames[loud], 2 * _PITCH_FRAME)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :_PITCH_FRAME]
    ac /= ac[:, :1] + 1e-9
    lo, hi = RATE // 400, RATE // 70
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = ac[np.arange(len(lag)), lag] > 0.5
    if voiced.sum() < PITCH_MIN_VOICED:
        return None
    st = 12 * np.log2(RATE / lag[voiced])
    return float(np.mean(st[-5:]) - np.median(st))


def prosody_state(state: str, fall_st: float | None, threshold: float = FALL_ST) -> str:
    """``words+prosody``: a finished or doubtful verdict of the words becomes unfinished when the voice did not fall
    at the pause (``fall_st`` above ``threshold``). Finished -> doubtful (a 500 ms wait) only halved the cut-offs on
    the tuning and dev sets: pauses run to 900 ms. No pitch (too little voice): the words decide."""
    return state if fall_st is None or fall_st <= threshold else UNFINISHED


SURE_P = 0.98
"""``tentative_end``: Smart Turn at or above this outweighs a pitch that did not fall. The pitch tracker was tuned on
espeak/MBROLA voices and misreads real voices' creaky sentence ends (octave jumps: "+14 st" on a falling "lives."); on
the 47 real utterances (bench/hearing.py) a pitch-only rule held back ~36% of finished turns, this ~23%."""


TENTATIVE_FALL_ST = -2.0
"""``tentative_end``: a voice that fell less than this at the pause had not finished. The highest threshold that catches
the same paused sentences of the tuning and dev sets as ``FALL_ST`` (their first parts end at -1.9 semitones or above,
the finished sentences they are told from mostly at -2.5 or below), so that the fewest finished turns are held: the
e2e visitor's "where are the toilets" ends at -2.3."""


def tentative_end(pcm: np.ndarray, p: float | None) -> bool:
    """A turn ended at the first silence on the words and Smart Turn (``pcm``: the utterance up to the pause) whose
    voice still did not fall (``final_pitch_st`` above ``TENTATIVE_FALL_ST``), Smart Turn short of ``SURE_P`` (``p``
    None: no model). Such an end is taken, but the brain holds its answer longer (``brain.answer_gap_tentative_ms``): a
    visitor who pauses after "Is there a place" with the voice up goes on before the answer is heard. No pitch (too
    little voice): not tentative. The pitch (~5-9 ms) is only read when Smart Turn leaves it open. (A doubtful
    sentence, ended after ``turn_doubt_silence_ms``, is tentative too: the pipeline marks it.)"""
    if p is not None and p >= SURE_P:
        return False
    fall_st = final_pitch_st(pcm)
    return fall_st is not None and fall_st > TENTATIVE_FALL_ST


def smart_turn_state(state: str, p: float, threshold: float = 0.5) -> str:
    """``words+smart_turn``: the words' verdict with Smart Turn's probability ``p`` that the turn is finished. Below
    ``threshold`` the signals disagree on a finished sentence (a short wait: doubtful) or both are unsure of a doubtful
    one (the long wait: unfinished)."""
    if p >= threshold:
        return state
    return DOUBTFUL if state == FINISHED else UNFINISHED
