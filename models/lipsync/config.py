"""Configuration of the lip-sync network, its data and its training (dataclasses, no magic)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from assistant.face.audio_features import FeatureConfig


@dataclass(frozen=True)
class TargetConfig:
    """The [0, 1] box mouth landmarks are predicted in (seed paper: a fixed range to operate in)."""

    lo: tuple[float, float] = (-0.7, 0.8)
    hi: tuple[float, float] = (0.7, 1.8)
    """Canonical x, y bounds; GRID mouths after rest-shape normalisation span x -0.46..0.47,
    y 0.96..1.59, so the box leaves room for wider openings than GRID shows."""


@dataclass(frozen=True)
class NetConfig:
    """The network: one bidirectional LSTM layer (best in the seed's Table 1) with dropout."""

    in_dim: int = FeatureConfig().dim
    hidden: int = 64
    """Per direction. 64 is plenty for 40 outputs and keeps run time far above 200x real time."""
    dropout: float = 0.3
    """Seed Table 2: 0.3 beat 0 and 0.5 for a single bidirectional layer."""
    out_dim: int = 40
    lookahead: int = 0
    """0: full bidirectional (whole utterance known, as our TTS provides). >0: streaming variant,
    a causal LSTM fed features shifted by this many frames (bounded latency of lookahead/fps)."""
    context: int = 2
    """+-frames of features concatenated by a 1-D convolution before the LSTM (local spectral change)."""
    kind: str = "lstm"
    """"lstm": convolution + (bi)LSTM. "tcn": convolution + residual dilated convolutions (no
    recurrence: a few times cheaper to train and run on CPU, whole utterance, fixed context)."""
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    """"tcn" only: one residual 3-tap block per dilation; with ``context`` 2 the network sees
    +-(2 + sum(dilations)) frames = +-0.68 s at 25 fps."""
    utterance_norm: bool = True
    """Inside the graph, per utterance: log energy relative to the utterance's loudest frame and
    cepstral mean subtraction over its speech frames (speaker, microphone and gain robustness).
    Needs the whole utterance, so only for ``lookahead == 0``."""
    silence_gate: float | None = -14.0
    """Natural-log power (about -61 dBFS): an utterance whose loudest frame stays below it (hiss,
    a silent microphone) keeps the neutral mouth, and so do digitally silent frames inside speech
    (a smooth gate inside the graph): whatever the network makes of their spectrum. None: no gate."""
    energy_floor: float = -11.0
    """Natural-log power (per sample, full scale 1) below which an utterance's loudest frame is not
    treated as speech: about -48 dBFS, under any speech we drive but above room hiss, so digital
    silence and hiss stay quiet relative to it instead of being scaled up to 'loud'."""


@dataclass(frozen=True)
class GridSplit:
    """Real GRID clips: 6 to train on, 1 to watch while tuning, 3 never used in training or
    tuning decisions (the bench and the model card's table use only those)."""

    train: tuple[str, ...] = ("bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "sbia1a", "sbwe5n")
    val: tuple[str, ...] = ("lwbsza",)
    heldout: tuple[str, ...] = ("lrwp9a", "pwij3p", "swiz3n")


GRID_TRANSCRIPTS = {
    "bbaf2n": "bin blue at f two now", "brbk7n": "bin red by k seven now",
    "lbax4n": "lay blue at x four now", "lbbc2a": "lay blue by c two again",
    "lrwp9a": "lay red with p nine again", "lwbsza": "lay white by s zero again",
    "pwij3p": "place white in j three please", "sbia1a": "set blue in a one again",
    "sbwe5n": "set blue with e five now", "swiz3n": "set white in z three now",
}


@dataclass
class TrainConfig:
    """One training run."""

    net: NetConfig = field(default_factory=NetConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    split: GridSplit = field(default_factory=GridSplit)
    epochs: int = 40
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    min_len: int = 25
    max_len: int = 150
    """Random crops of 1-6 s: varied lengths keep the output from settling into an idle mouth."""
    real_fraction: float = 0.3
    """Share of examples drawn from the (few) real clips; the rest are synthetic voices."""
    amp_ref: float | None = None
    """Speaker-normalised targets: each clip's offsets from the neutral mouth are scaled so that
    its 95th-percentile inner-lip opening equals this (inter-ocular units); None: targets as
    measured. Speakers open their mouths 0.2-0.33 IOD wide: without this the network averages
    their amplitudes away; with it, amplitude is one learned constant, calibrated afterwards."""
    corr_weight: float = 0.5
    """Weight of (1 - Pearson r) of the predicted vs target opening per crop in the loss: what we
    are judged on, and it does not reward the damped mean mouth that MSE drifts to."""
    p_quiet: float = 0.03
    """Share of examples that are quiet hiss (-80..-50 dBFS) with a closed mouth."""
    seed: int = 0
    threads: int = 1
    """Torch threads: the box is shared; one core is enough for this network."""

    def to_dict(self) -> dict:
        return asdict(self)
