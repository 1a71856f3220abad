"""Synthetic lip-sync corpus: many TTS voices, their phoneme timings turned into mouth tracks.

``python -m models.lipsync.synth --out build/lipsync/synth --n 600`` writes ``.npz`` clips
(``dataset.Clip``, ``real=False``). Voices: espeak-ng (bundled library, phoneme events, many
languages and variants) and, when installed, MBROLA us1/us2/us3/en1 (apt: mbrola mbrola-us1
...). Rate, pitch and articulation strength are drawn per clip; mouth tracks come from
``assistant.face.visemes`` with drawn coarticulation settings. Breath clips (shaped noise,
slightly parted lips) teach that non-speech sound moves the mouth a little and silence closes it.
Sentences in the held-out GRID clips are never synthesised.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from assistant import espeak
from assistant.face.audio_features import n_video_frames
from assistant.face.mouth_shapes import articulate
from assistant.face.visemes import CoarticulationConfig, viseme_parameters
from assistant.messages import Phoneme

from .config import GRID_TRANSCRIPTS, GridSplit
from .dataset import SAMPLE_RATE, Clip

log = logging.getLogger(__name__)
FPS = 25.0

_GRID_WORDS = (
    ["bin", "lay", "place", "set"], ["blue", "green", "red", "white"], ["at", "by", "in", "with"],
    list("abcdefghijklmnopqrstuvxyz"), ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    ["again", "now", "please", "soon"],
)
ENGLISH = [
    "Hello, how can I help you today?", "The meeting room is on the second floor, to your left.",
    "Please wait a moment while I check the calendar.", "Good morning! Welcome to our office.",
    "I have sent the message to your colleague.", "Would you like a cup of coffee or tea?",
    "My name is Ada, and I am the assistant at this desk.", "Thank you very much, have a lovely day.",
    "Sorry, I did not catch that. Could you say it again?", "The weather is bright and sunny this afternoon.",
    "Your visitor badge is ready at the reception.", "Bob bought a big blue boat by the bay.",
    "Five wise wives waved from the window.", "She sells sea shells on the sea shore.",
    "Peter picked a peck of pickled peppers.", "How now, brown cow? Oh, you are so cool!",
    "We were away in Norway for a week.", "Maybe I will call you back at about nine.",
    "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them",
    "he was not an ill disposed young man unless to be rather cold hearted and rather selfish is to be ill disposed",
]
OTHER = {
    "de": ["Guten Morgen, wie kann ich Ihnen helfen?", "Das Wetter ist heute wunderbar."],
    "es": ["Buenos días, ¿en qué puedo ayudarle?", "La reunión empieza a las nueve."],
    "fr": ["Bonjour, comment puis-je vous aider?", "Le bureau est au deuxième étage."],
    "cs": ["Dobrý den, jak vám mohu pomoci?", "Kancelář je ve druhém patře."],
    "cmn": ["你好，我能帮你什么忙？", "今天天气很好，我们去公园吧。", "君不见黄河之水天上来"],
    "it": ["Buongiorno, come posso aiutarla?"], "ru": ["Здравствуйте, чем я могу помочь?"],
}
_ESPEAK_VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+croak", "+klatt"]
_MBROLA = ["us1", "us2", "us3", "en1"]


def grid_sentence(rng: np.random.Generator) -> str:
    heldout = {GRID_TRANSCRIPTS[n] for n in GridSplit().heldout}
    while True:
        s = " ".join(rng.choice(ws) for ws in _GRID_WORDS)
        if s not in heldout:
            return s


def gibberish(rng: np.random.Generator) -> str:
    cons, vows = list("bdfghjklmnprstvwz") + ["sh", "ch", "th"], ["a", "e", "i", "o", "u", "ai", "oo", "ee"]
    words = ["".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.integers(1, 4))) for _ in range(rng.integers(2, 7))]
    return " ".join(words)


def mouth_track(phonemes: list[Phoneme], alphabet: str, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Viseme trajectory with a drawn speaking style (coarticulation, articulation strength)."""
    cfg = CoarticulationConfig(
        rate=float(rng.uniform(30, 60)), lead_s=float(rng.uniform(0.0, 0.06)), articulation=float(rng.uniform(0.7, 1.3))
    )
    p = viseme_parameters(phonemes, alphabet, n_frames, FPS, cfg)
    return articulate(p[:, 0], p[:, 1], p[:, 2])


def _to_clip(name: str, pcm: np.ndarray, rate: int, phonemes, alphabet: str, rng) -> Clip:
    import soxr

    audio = soxr.resample(pcm.astype(np.float32), rate, SAMPLE_RATE).astype(np.float32) if rate != SAMPLE_RATE else pcm
    n = n_video_frames(len(audio), SAMPLE_RATE, FPS)
    return Clip(name, audio.astype(np.float32), mouth_track(phonemes, alphabet, n, rng), FPS, False)


def mbrola_clip(text: str, voice: str, rng: np.random.Generator, name: str) -> Clip:
    """espeak-ng makes the .pho (SAMPA phonemes + durations), mbrola speaks exactly those."""
    import soundfile as sf

    rate = int(rng.integers(120, 230))
    pho = espeak.mbrola_pho(text, voice, rate)
    phonemes, t = [], 0.0
    for line in pho.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(";"):
            dur = float(parts[1]) / 1000
            phonemes.append(Phoneme(parts[0], t, dur))
            t += dur
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "x.pho").write_text(pho)
        db = f"/usr/share/mbrola/{voice}/{voice}"
        subprocess.run(["mbrola", "-f", f"{rng.uniform(0.75, 1.35):.2f}", db, f"{tmp}/x.pho", f"{tmp}/x.wav"],
                       capture_output=True, timeout=30, check=True)
        pcm, sr = sf.read(f"{tmp}/x.wav", dtype="float32")
    return _to_clip(name, pcm, sr, phonemes, "sampa", rng)


def breath_clip(rng: np.random.Generator, name: str) -> Clip:
    """Silence, one to three breaths (band-passed noise bursts), silence; lips part slightly."""
    n_frames = int(rng.integers(40, 100))
    audio = np.zeros(int(n_frames / FPS * SAMPLE_RATE), np.float32)
    opening = np.zeros(n_frames)
    for _ in range(rng.integers(1, 4)):
        dur = rng.uniform(0.25, 0.7)
        start = rng.uniform(0.1, n_frames / FPS - dur - 0.05)
        i0, n = int(start * SAMPLE_RATE), int(dur * SAMPLE_RATE)
        noise = np.cumsum(rng.standard_normal(n)) * 0.02  # brown-ish
        noise = np.diff(noise, prepend=0) + 0.3 * noise / (np.abs(noise).max() + 1e-9)
        env = np.sin(np.linspace(0, np.pi, n)) ** 2
        audio[i0 : i0 + n] += (noise / (np.abs(noise).max() + 1e-9) * env * rng.uniform(0.02, 0.15)).astype(np.float32)
        f = np.arange(n_frames) / FPS
        opening = np.maximum(opening, rng.uniform(0.02, 0.06) * np.interp(f, [start - 0.08, start + dur / 3, start + dur, start + dur + 0.1], [0, 1, 1, 0], left=0, right=0))
    return Clip(name, audio, articulate(opening), FPS, False)


def librivox_clips(folder: Path, rng: np.random.Generator) -> list[Clip]:
    """Real read speech with its phone alignment (``*.phone.json``): human voices, viseme mouths."""
    import json

    import soundfile as sf

    clips = []
    for js in sorted(folder.glob("*.phone.json")):
        wav = js.with_name(js.name.replace(".phone.json", ".wav"))
        if not wav.is_file():
            continue
        words = json.loads(js.read_text())["w"]
        phonemes = [Phoneme(p["t"], p["b"], p["d"]) for w in words for p in w.get("w", [])]
        pcm, sr = sf.read(str(wav), dtype="float32")
        clips.append(_to_clip(f"librivox_{wav.stem[-4:]}", pcm, sr, phonemes, "arpabet", rng))
    return clips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/lipsync/synth"))
    ap.add_argument("--n", type=int, default=600, help="clips to make")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--librivox", type=Path, default=None, help="speech/librivox folder: add its aligned real voices")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from tqdm import tqdm

    from .espeak import Espeak

    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    tts = Espeak()
    have_mbrola = shutil.which("mbrola") is not None and espeak.program() is not None
    if not have_mbrola:
        log.warning("mbrola/espeak-ng CLI missing: espeak-ng voices only (apt: mbrola mbrola-us1 ...)")
    if args.librivox:
        for clip in librivox_clips(args.librivox, rng):
            clip.save(args.out / f"{clip.name}.npz")
    for i in tqdm(range(args.n), desc="synth", unit="clip"):
        name = f"syn{i:05d}"
        kind = rng.random()
        try:
            if kind < 0.05:
                clip = breath_clip(rng, name)
            else:
                lang = "en"
                r = rng.random()
                text = grid_sentence(rng) if r < 0.35 else gibberish(rng) if r < 0.5 else str(rng.choice(ENGLISH))
                if rng.random() < 0.15:
                    lang = str(rng.choice(list(OTHER)))
                    text = str(rng.choice(OTHER[lang]))
                if have_mbrola and lang == "en" and kind < 0.35:
                    clip = mbrola_clip(text, str(rng.choice(_MBROLA)), rng, name)
                else:
                    if lang == "en":
                        lang = str(rng.choice(["en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland"]))
                    voice = lang + str(rng.choice(_ESPEAK_VARIANTS))
                    pcm, sr, ph = tts.say(text, voice, rate=int(rng.integers(110, 260)),
                                          pitch=int(rng.integers(20, 90)), pitch_range=int(rng.integers(20, 90)))
                    clip = _to_clip(name, pcm, sr, ph, "espeak", rng)
        except (subprocess.SubprocessError, ValueError, RuntimeError) as exc:
            log.warning("%s skipped: %s", name, exc)
            continue
        clip.save(args.out / f"{name}.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
