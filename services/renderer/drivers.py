"""Which mouth driver animates an utterance (``renderer.driver``), and driving it safely.

``auto`` uses phoneme visemes when the voice sent phoneme timings (they come from the synthesiser
that made the audio, so their timing is exact), the learned audio -> landmarks model for audio
without timings (gTTS, any other sound) when its file is there, else the audio energy driver,
which needs nothing but the waveform. A
learned model that is absent or unloadable under ``auto`` is a log line, not a failure: the
kiosk keeps talking with the other drivers. Asking for ``lstm`` explicitly without a usable
model is a start-up error, because the operator asked for something we cannot do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.errors import SetupError
from assistant.face.driver import MouthDriver
from assistant.face.energy import EnergyDriver
from assistant.face.visemes import VisemeDriver
from assistant.messages import Phoneme

log = logging.getLogger(__name__)

MAX_UTTERANCE_S = 120.0  # one sentence; anything longer is a bug upstream, not speech to animate


class DriverError(SetupError):
    """The configured driver cannot run; the message says what to do."""


class DriverChoice:
    """Holds the drivers and picks one per utterance."""

    def __init__(self, mode: str = "auto", lstm_model: str = ""):
        if mode not in ("auto", "viseme", "energy", "lstm"):
            raise DriverError(f"renderer.driver = {mode!r}: use auto, viseme, energy or lstm")
        self.mode = mode
        self.energy = EnergyDriver()
        self.viseme = VisemeDriver()
        self.lstm: MouthDriver | None = None
        if mode in ("auto", "lstm"):
            self.lstm = self._load_lstm(lstm_model, required=mode == "lstm")

    @staticmethod
    def _load_lstm(model: str, required: bool) -> MouthDriver | None:
        from assistant.face.lstm_driver import DEFAULT_MODEL

        path = Path(model) if model else DEFAULT_MODEL
        if not path.is_file():
            if required:
                raise DriverError(f"renderer.driver = 'lstm' but the model {path} is missing: train it"
                                  " (python -m models.lipsync.train) or set renderer.driver = 'auto'")
            log.info("no learned lip-sync model at %s: visemes when phonemes come, else audio energy", path)
            return None
        try:
            from assistant.face.lstm_driver import LstmDriver

            return LstmDriver(path, threads=1)
        except Exception as exc:  # noqa: BLE001 - a broken model file must not stop the face
            if required:
                raise DriverError(f"lip-sync model {path} cannot be loaded: {exc}") from None
            log.warning("lip-sync model %s unusable (%s): using the viseme and energy drivers", path, exc)
            return None

    def warm_up(self) -> None:
        """Run every driver once on a little noise: first calls pay for lazy set-up (FFT plans,
        onnxruntime's first run), which would otherwise delay the first utterance's mouth."""
        noise = (np.random.default_rng(0).normal(0, 2000, 8000)).astype(np.int16)
        for driver in (self.energy, self.viseme, self.lstm):
            if driver is not None:
                try:
                    driver.drive(noise, 16000, 30.0, [Phoneme("AA", 0.1, 0.2)], "arpabet")
                except Exception as exc:  # noqa: BLE001 - the real utterance will report it properly
                    log.debug("warm-up of %s failed: %s", driver.name, exc)

    def pick(self, has_phonemes: bool) -> MouthDriver:
        if self.mode == "energy":
            return self.energy
        if self.mode == "viseme":
            # Without timings the viseme driver would hold the mouth shut; the audio can still move it.
            return self.viseme if has_phonemes else self.energy
        if self.mode == "lstm":
            return self.lstm  # type: ignore[return-value]  # checked at start-up
        if has_phonemes:
            return self.viseme
        return self.lstm if self.lstm is not None else self.energy


def pcm_from_bytes(data: bytes, sample_rate: int) -> np.ndarray:
    """Mono int16 samples of a ``voice.utterance`` payload; ValueError with the reason when unusable."""
    if sample_rate < 4000 or sample_rate > 192_000:
        raise ValueError(f"sample rate {sample_rate} Hz is not audio")
    if not data:
        raise ValueError("no PCM")
    if len(data) % 2:
        raise ValueError(f"PCM of {len(data)} bytes is not 16-bit")
    if len(data) / 2 / sample_rate > MAX_UTTERANCE_S:
        raise ValueError(f"utterance of {len(data) / 2 / sample_rate:.0f} s is longer than {MAX_UTTERANCE_S:.0f} s")
    return np.frombuffer(data, dtype="<i2")


def drive(driver: MouthDriver, pcm: np.ndarray, sample_rate: int, fps: float,
          phonemes: Sequence[Phoneme], alphabet: str) -> np.ndarray:
    """The driver's mouths, checked: (frames, 20, 2) finite float32."""
    mouths = np.asarray(driver.drive(pcm, sample_rate, fps, list(phonemes) or None, alphabet), np.float32)
    if mouths.ndim != 3 or mouths.shape[1:] != (20, 2) or not len(mouths):
        raise ValueError(f"driver {driver.name} returned mouths of shape {mouths.shape}")
    if not np.isfinite(mouths).all():
        raise ValueError(f"driver {driver.name} returned non-finite mouths")
    return mouths
