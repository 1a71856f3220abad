"""Configuration of the neural mouth renderer: crop geometry, networks, training (dataclasses).

Checkpoints and avatar folders store these as dicts, so a model is rebuilt from its own file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Mode = Literal["temporal", "pix2pix"]


@dataclass(frozen=True)
class CropConfig:
    """The mouth region: a square in the canonical face frame (``assistant.face.geometry``:
    eyes at (-0.5, 0) and (0.5, 0), y down), resampled to ``size`` x ``size`` pixels."""

    size: int = 256
    """Crop side in pixels. 256 on a GPU; CPU builds use 64-128 (the renderer says which it loaded)."""
    centre: tuple[float, float] = (0.0, 1.15)
    """Canonical centre: a resting mouth sits near y = 1.0-1.2, so this keeps the lips centred
    with room for the chin when the jaw drops."""
    half: float = 0.8
    """Half the side in inter-ocular units: from the nose's base (y 0.35) to under the chin (1.95)."""
    mask_rx: float = 0.40
    mask_ry: float = 0.36
    """Radii of the blend ellipse as fractions of the side; inside it the generated mouth replaces
    the frame. Ellipse centre is ``mask_cy`` (fraction of the side from the top)."""
    mask_cy: float = 0.56
    feather: float = 0.10
    """Width of the soft edge as a fraction of the side (wide edges hide colour differences)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropConfig":
        d = dict(d)
        d["centre"] = tuple(d.get("centre", cls.centre))
        return cls(**d)


@dataclass(frozen=True)
class NetConfig:
    """Generator and discriminators."""

    mode: Mode = "temporal"
    """``temporal``: the generator also sees its previous output and a temporal discriminator
    judges consecutive frames (Everybody Dance Now); ``pix2pix``: single frames (comparison)."""
    size: int = 256
    """Crop side the network is built for (the U-Net depth follows it)."""
    ngf: int = 32
    """Generator channels at full resolution (doubling per level up to 8x)."""
    ndf: int = 32
    """Discriminator channels in its first layer."""
    use_reference: bool = True
    """Condition on a still frame of the person (closed mouth): texture and colour of this face."""

    @property
    def levels(self) -> int:
        """Down-sampling steps: down to a 4x4 bottleneck, at most 7."""
        return max(2, min(self.size.bit_length() - 3, 7))

    @property
    def in_channels(self) -> int:
        return 3 + (3 if self.mode == "temporal" else 0) + (3 if self.use_reference else 0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """One training run (pix2pix's defaults where they apply)."""

    net: NetConfig = field(default_factory=NetConfig)
    steps: int = 3000
    batch: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    """pix2pix's Adam settings: a low beta1 keeps the GAN game from oscillating."""
    l1_weight: float = 100.0
    """pix2pix's lambda: L1 sets the picture, the adversarial term sharpens it."""
    temporal_weight: float = 1.0
    """Weight of the temporal discriminator's loss for the generator (temporal mode)."""
    temporal_l1: float = 0.0
    """Temporal mode: weight of an L1 loss between the generated and the real frame-to-frame change
    ((g_t - g_t-1) - (r_t - r_t-1)). Not in Everybody Dance Now (which relies on the temporal
    discriminator alone); it targets the flicker measure directly. 0 turns it off."""
    feature_matching: float = 0.0
    """Weight of pix2pixHD's feature-matching loss: L1 between the image discriminator's
    activations on the generated and on the real frame (a perceptual loss from a network trained
    here, on this person: nothing downloaded). 0 turns it off."""
    mouth_l1: float = 0.0
    """Weight of an extra L1 inside the lips (outer-lip polygon of the frame's landmarks, dilated):
    the pixels whose look follows the landmarks (opening, teeth, tongue), so errors there, the
    ones that break lip sync, cost more than skin around them. 0 turns it off."""
    edge_l1: float = 0.0
    """Weight of an L1 between the image gradients of the generated and the real frame inside the
    lips: plain L1 is satisfied by a blur of the teeth; this asks for their edges. 0 turns it off."""
    real_previous: float = 0.5
    """Temporal mode: chance that the first frame of a training pair starts from the true previous
    frame rather than the reference (at run time a sequence starts from the reference)."""
    checkpoint_every: int = 200
    """Steps between resumable checkpoints."""
    seed: int = 0
    threads: int = 1
    """Torch threads: the box is shared."""

    def to_dict(self) -> dict:
        return asdict(self)
