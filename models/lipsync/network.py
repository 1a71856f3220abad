"""Audio features -> mouth landmarks: utterance and feature normalisation, a local convolution,
then one LSTM layer or residual dilated convolutions ("tcn"), amplitude gain and silence gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from assistant.face.audio_features import FeatureConfig
from assistant.face.mouth_shapes import NEUTRAL_MOUTH

from .config import NetConfig, TargetConfig
from .dataset import to_unit


class LipSyncNet(nn.Module):
    """(batch, frames, features) -> (batch, frames, 40) mouth points in the [0, 1] target box.

    Feature mean/std are buffers, so the exported ONNX graph takes raw ``frame_features``.
    ``kind == "tcn"``: residual dilated convolutions over the whole utterance (the shipped model).
    ``lookahead == 0``: bidirectional LSTM (whole utterance). ``lookahead = L > 0``: causal LSTM
    whose output for frame t is read L steps later, so it has heard L frames (plus the
    convolution's ``context``) of the future: bounded latency for streaming.
    """

    def __init__(self, cfg: NetConfig, tcfg: TargetConfig = TargetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))
        # Amplitude calibration, set after training on real speakers: the predicted offset from
        # the neutral mouth is multiplied by it (in the target box).
        self.register_buffer("out_gain", torch.ones(()))
        self.utterance_norm = cfg.utterance_norm and cfg.lookahead == 0
        self.per_hop = FeatureConfig().per_hop
        self.n_cep = FeatureConfig().n_mfcc - 1
        self.conv = nn.Conv1d(cfg.in_dim, cfg.hidden, 2 * cfg.context + 1, padding=cfg.context)
        bidir = cfg.lookahead == 0
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.kind == "tcn":
            if cfg.lookahead:
                raise ValueError("the tcn network is for whole utterances (lookahead 0)")
            self.blocks = nn.ModuleList(nn.Conv1d(cfg.hidden, cfg.hidden, 3, padding=d, dilation=d) for d in cfg.dilations)
            self.head = nn.Linear(cfg.hidden, cfg.out_dim)
        elif cfg.kind == "lstm":
            self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True, bidirectional=bidir)
            self.head = nn.Linear(cfg.hidden * (2 if bidir else 1), cfg.out_dim)
        else:
            raise ValueError(f"unknown network kind {cfg.kind!r}")
        neutral = np.clip(to_unit(NEUTRAL_MOUTH, tcfg), 1e-3, 1 - 1e-3)
        self.register_buffer("neutral_unit", torch.from_numpy(neutral.astype(np.float32)))
        with torch.no_grad():  # start at the neutral mouth: early training refines, not searches
            self.head.bias.copy_(torch.logit(torch.from_numpy(neutral)))
            self.head.weight.mul_(0.1)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def normalise_utterance(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-utterance normalisation of raw ``frame_features`` (same layout out as in).

        Per hop the features are [log energy, c1..c12, their deltas]. The log energy becomes
        relative to the utterance's loudest frame (floored at ``energy_floor``, so silence is not
        blown up), the cepstra lose their mean over the utterance's speech frames (frames within
        ~20 dB of the loudest, softly weighted): what is left is how the sound changes, not who
        speaks into which microphone how loudly. ``mask`` (batch, frames) marks real frames of a
        padded batch; None: every frame is real (run time, batch 1).
        """
        if not self.utterance_norm:
            return feats
        b, t, d = feats.shape
        p, nc = self.per_hop, self.n_cep
        h = feats.reshape(b, t, d // p, p)
        e = h[..., 0]  # (b, t, hops) natural-log power per hop
        e_frame = e.mean(-1)
        if mask is None:
            emax = e_frame.max(dim=1, keepdim=True).values
            m = torch.ones_like(e_frame)
        else:
            m = mask
            emax = (e_frame + (m - 1.0) * 1e4).max(dim=1, keepdim=True).values
        ref = torch.clamp(emax, min=self.cfg.energy_floor)  # (b, 1)
        rel = e - ref[..., None]
        w = torch.sigmoid(2.0 * (e_frame - (ref - 5.0))) * m  # speech frames of this utterance
        cep = h[..., 1 : 1 + nc]
        mu = (cep * w[..., None, None]).sum(dim=(1, 2)) / (w.sum(dim=1, keepdim=True) * (d // p) + 1e-3)
        cep = cep - mu[:, None, None, :]
        out = torch.cat([rel[..., None], cep, h[..., 1 + nc :]], dim=-1)
        return out.reshape(b, t, d)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = (self.normalise_utterance(feats, mask) - self.feat_mean) / self.feat_std
        L = self.cfg.lookahead
        if L > 0:  # repeat the last frame so every output step has L frames after it
            x = torch.cat([x, x[:, -1:, :].expand(-1, L, -1)], dim=1)
        if mask is not None and L > 0:
            mask = torch.cat([mask, mask[:, -1:].expand(-1, L)], dim=1)
        if mask is not None:  # padding is the mean feature, not a spectrum
            x = x * mask[..., None]
        x = torch.relu(self.conv(self.drop(x).transpose(1, 2)))
        if self.cfg.kind == "tcn":
            # Padding frames are zeroed after every layer, exactly as the convolutions' own zero
            # padding past the end of an utterance: a padded batch computes what batch 1 does.
            m = mask[:, None, :] if mask is not None else None
            for block in self.blocks:
                if m is not None:
                    x = x * m
                x = x + self.drop(torch.relu(block(x)))
            h = x.transpose(1, 2)
        else:
            h, _ = self.lstm(x.transpose(1, 2))
        y = torch.sigmoid(self.head(self.drop(h)))
        gain = self.out_gain
        if self.cfg.silence_gate is not None:
            b, t, d = feats.shape
            e_frame = feats.reshape(b, t, d // self.per_hop, self.per_hop)[..., 0].mean(-1)
            e_top = (e_frame + ((mask - 1.0) * 1e4 if mask is not None and L == 0 else 0.0)).max(dim=1, keepdim=True).values
            # An utterance with no frame above the gate (hiss, a silent microphone) keeps the
            # neutral mouth throughout; inside speech only digital silence (frames at the power
            # floor, -100 dBFS) is held closed, as recordings never go that quiet.
            gate = torch.sigmoid(2.0 * (e_top - self.cfg.silence_gate)) * torch.sigmoid(2.0 * (e_frame + 20.0))
            if L > 0:
                gate = torch.cat([gate[:, :1].expand(-1, L), gate], dim=1)  # output step j is frame j - L
            gain = gain * gate[..., None]
        y = self.neutral_unit + gain * (y - self.neutral_unit)
        return y[:, L:, :] if L > 0 else y


class Ensemble(nn.Module):
    """The mean of several trained ``LipSyncNet`` (same config, other seeds), with its own
    ``out_gain`` around the neutral mouth: averaging damps the amplitude a little, so the
    ensemble is calibrated again. Same input and output as one network."""

    def __init__(self, members: list[LipSyncNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.cfg = members[0].cfg
        self.register_buffer("out_gain", torch.ones(()))
        self.register_buffer("neutral_unit", members[0].neutral_unit.clone())

    @property
    def feat_mean(self) -> torch.Tensor:
        return self.members[0].feat_mean

    @property
    def feat_std(self) -> torch.Tensor:
        return self.members[0].feat_std

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = torch.stack([m(feats, mask) for m in self.members]).mean(0)
        return self.neutral_unit + self.out_gain * (y - self.neutral_unit)


def build(net_cfg: dict | NetConfig, tcfg: dict | TargetConfig | None = None) -> LipSyncNet:
    """Rebuild a network from the dicts a checkpoint stores."""
    if isinstance(net_cfg, dict):  # checkpoints from before utterance normalisation had none
        net_cfg = dict(net_cfg)
        if "dilations" in net_cfg:
            net_cfg["dilations"] = tuple(net_cfg["dilations"])
        old = {} if "utterance_norm" in net_cfg else {"utterance_norm": False, "silence_gate": None}
        net_cfg = NetConfig(**{**old, **net_cfg})
    if isinstance(tcfg, dict):
        tcfg = TargetConfig(**{k: tuple(v) for k, v in tcfg.items()})
    return LipSyncNet(net_cfg, tcfg or TargetConfig())


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """A training checkpoint (``.pt``: one network, or an ensemble saved by a fine-tune) or an
    exported model (``.onnx``, e.g. the shipped ``lipsync.onnx``: see ``from_onnx``)."""
    if Path(path).suffix == ".onnx":
        return from_onnx(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("members"):  # an ensemble (a fine-tuned shipped model)
        ens = Ensemble([build(ckpt["net"], ckpt["target"]) for _ in range(int(ckpt["members"]))])
        ens.load_state_dict(ckpt["state"])
        return ens.eval(), ckpt
    model = build(ckpt["net"], ckpt["target"])
    state = dict(ckpt["state"])
    for key, buf in model.state_dict().items():  # checkpoints from before a buffer existed
        if key in ("out_gain", "neutral_unit") and key not in state:
            state[key] = buf
    model.load_state_dict(state)
    model.eval()
    return model, ckpt


def from_onnx(path) -> tuple[nn.Module, dict]:
    """The torch network an exported ``lipsync.onnx`` was made from, with its weights: what
    ``assistant avatar build`` fine-tunes when no training checkpoint is at hand (the shipped
    model ships as ONNX only). The exporter's metadata (``lipsync``) gives the configuration;
    the initializers give the weights, except each head's weight, which the exporter folded
    into a transposed ``MatMul`` constant (found through the node that uses it). An ensemble's
    members share one copy of the buffers that are equal (feature statistics, neutral mouth). Returns (model, checkpoint dict in
    the training format, with ``members`` set for an ensemble)."""
    import json
    import re

    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    if "lipsync" not in meta:
        raise ValueError(f"{path}: not a lip-sync model (no 'lipsync' metadata)")
    info = json.loads(meta["lipsync"])
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:  # /members.K/head/MatMul or /head/MatMul: x @ W.T, W.T stored
        m = re.fullmatch(r"/((?:members\.\d+/)?)head/MatMul", node.name)
        if m and node.op_type == "MatMul":
            prefix = m.group(1).replace("/", ".")
            weights[f"{prefix}head.weight"] = weights[node.input[1]].T
    target = {"lo": list(info["target_lo"]), "hi": list(info["target_hi"])}
    members = sorted({int(k.split(".")[1]) for k in weights if k.startswith("members.")})
    nets = [build(info["net"], target) for _ in members] or [build(info["net"], target)]
    model: nn.Module = Ensemble(nets) if members else nets[0]
    state = model.state_dict()
    for key in state:
        # buffers equal across members are stored once (under member 0, or the ensemble's own)
        rest = key.split(".", 2)[2] if key.startswith("members.") else key
        name = next((n for n in (key, "members.0." + rest, rest) if n in weights), None)
        if name is None:
            raise ValueError(f"{path}: no weight for {key}")
        arr = np.asarray(weights[name], dtype=np.float32)
        if tuple(arr.shape) != tuple(state[key].shape):
            raise ValueError(f"{path}: {key} has shape {arr.shape}, the network wants {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(arr.copy())
    model.load_state_dict(state)
    model.eval()
    ckpt = {"net": info["net"], "target": target, "features": info["features"], "state": model.state_dict(),
            "data": {**info.get("data", {}), "from_onnx": Path(path).name}}
    if members:
        ckpt["members"] = len(members)
    return model, ckpt
