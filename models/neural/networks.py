"""U-Net generator and PatchGAN discriminators (pix2pix, Isola et al. 2017; temporal version from
"Everybody Dance Now", Chan et al. 2019).

Images are (batch, 3, S, S) in [-1, 1]. The generator's inputs are separate tensors so the ONNX
graph names them: ``drawing`` (the landmark drawing), ``previous`` (its own previous output;
temporal mode only) and ``reference`` (a still frame of the person's mouth region).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NetConfig


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    # Nearest upsampling + 3x3 convolution instead of a transposed convolution: no checkerboard.
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class UNetGenerator(nn.Module):
    """Encoder down to 4x4, decoder back up with skip connections at every level.

    Skips carry the fine texture of the reference and previous frames straight to the output; the
    bottleneck carries the mouth shape. The output is a full crop; the compositor uses only its
    masked middle.
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = [min(cfg.ngf * 2**i, cfg.ngf * 8) for i in range(cfg.levels)]
        self.downs = nn.ModuleList()
        cin = cfg.in_channels
        for i, c in enumerate(ch):
            self.downs.append(_down(cin, c, norm=i > 0))
            cin = c
        self.ups = nn.ModuleList()
        for i in reversed(range(1, cfg.levels)):
            # input: deeper features (after the first up: concatenated with the skip)
            c_in = ch[i] if i == cfg.levels - 1 else ch[i] * 2
            self.ups.append(_up(c_in, ch[i - 1]))
        self.out = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[0] * 2, 3, 3, 1, 1), nn.Tanh())

    def forward(self, drawing: torch.Tensor, previous: torch.Tensor | None = None,
                reference: torch.Tensor | None = None) -> torch.Tensor:
        parts = [drawing]
        if self.cfg.mode == "temporal":
            parts.append(previous)
        if self.cfg.use_reference:
            parts.append(reference)
        x = torch.cat(parts, dim=1)
        skips = []
        for d in self.downs:
            x = d(x)
            skips.append(x)
        for i, u in enumerate(self.ups):
            x = u(x)
            x = torch.cat([x, skips[-2 - i]], dim=1)
        return self.out(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake scores, each for one overlapping patch (70x70 at 256 px).

    Image discriminator: (drawing, frame) pairs. Temporal discriminator (Everybody Dance Now):
    (drawing t-1, drawing t, frame t-1, frame t), so it judges whether the change between two
    frames is one a real mouth makes for that change of landmarks.
    """

    def __init__(self, in_channels: int, ndf: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for i in range(1, layers):
            c2 = min(ndf * 2**i, ndf * 8)
            mods += [nn.Conv2d(c, c2, 4, 2, 1, bias=False), nn.InstanceNorm2d(c2, affine=True), nn.LeakyReLU(0.2, True)]
            c = c2
        c2 = min(c * 2, ndf * 8)
        mods += [nn.Conv2d(c, c2, 4, 1, 1, bias=False), nn.InstanceNorm2d(c2, affine=True), nn.LeakyReLU(0.2, True),
                 nn.Conv2d(c2, 1, 4, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(images, dim=1))

    def features(self, *images: torch.Tensor) -> list[torch.Tensor]:
        """Activations after every LeakyReLU and the final scores (pix2pixHD's feature matching
        compares these between a generated and the real frame)."""
        x, out = torch.cat(images, dim=1), []
        for m in self.net:
            x = m(x)
            if isinstance(m, nn.LeakyReLU):
                out.append(x)
        out.append(x)
        return out


def discriminator_layers(size: int) -> int:
    """Strided layers so the patch covers about a quarter of the crop (70 px of 256, as pix2pix)."""
    return 3 if size >= 128 else 2


def init_weights(module: nn.Module) -> None:
    """pix2pix's N(0, 0.02) initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(cfg: NetConfig | dict) -> UNetGenerator:
    if isinstance(cfg, dict):
        cfg = NetConfig(**cfg)
    g = UNetGenerator(cfg)
    init_weights(g)
    return g
