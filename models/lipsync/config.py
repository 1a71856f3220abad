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
    seed: int = 0
    threads: int = 1
    """Torch threads: the box is shared; one core is enough for this network."""

    def to_dict(self) -> dict:
        return asdict(self)
