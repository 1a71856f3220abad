"""Audio features -> mouth landmarks: feature normalisation, a local convolution, one LSTM layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from assistant.face.mouth_shapes import NEUTRAL_MOUTH

from .config import NetConfig, TargetConfig
from .dataset import to_unit


class LipSyncNet(nn.Module):
    """(batch, frames, features) -> (batch, frames, 40) mouth points in the [0, 1] target box.

    Feature mean/std are buffers, so the exported ONNX graph takes raw ``frame_features``.
    ``lookahead == 0``: bidirectional LSTM (whole utterance). ``lookahead = L > 0``: causal LSTM
    whose output for frame t is read L steps later, so it has heard L frames (plus the
    convolution's ``context``) of the future: bounded latency for streaming.
    """

    def __init__(self, cfg: NetConfig, tcfg: TargetConfig = TargetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))
        self.conv = nn.Conv1d(cfg.in_dim, cfg.hidden, 2 * cfg.context + 1, padding=cfg.context)
        bidir = cfg.lookahead == 0
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True, bidirectional=bidir)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden * (2 if bidir else 1), cfg.out_dim)
        neutral = np.clip(to_unit(NEUTRAL_MOUTH, tcfg), 1e-3, 1 - 1e-3)
        with torch.no_grad():  # start at the neutral mouth: early training refines, not searches
            self.head.bias.copy_(torch.logit(torch.from_numpy(neutral)))
            self.head.weight.mul_(0.1)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = (feats - self.feat_mean) / self.feat_std
        L = self.cfg.lookahead
        if L > 0:  # repeat the last frame so every output step has L frames after it
            x = torch.cat([x, x[:, -1:, :].expand(-1, L, -1)], dim=1)
        x = torch.relu(self.conv(self.drop(x).transpose(1, 2))).transpose(1, 2)
        h, _ = self.lstm(x)
        y = torch.sigmoid(self.head(self.drop(h)))
        return y[:, L:, :] if L > 0 else y


def build(net_cfg: dict | NetConfig, tcfg: dict | TargetConfig | None = None) -> LipSyncNet:
    """Rebuild a network from the dicts a checkpoint stores."""
    if isinstance(net_cfg, dict):
        net_cfg = NetConfig(**net_cfg)
    if isinstance(tcfg, dict):
        tcfg = TargetConfig(**{k: tuple(v) for k, v in tcfg.items()})
    return LipSyncNet(net_cfg, tcfg or TargetConfig())


def load_checkpoint(path) -> tuple[LipSyncNet, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = build(ckpt["net"], ckpt["target"])
    model.load_state_dict(ckpt["state"])
    model.eval()
    return model, ckpt
