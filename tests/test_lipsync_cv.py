"""Speaker-robust lip-sync training pieces: utterance normalisation, speaker-normalised targets,
the precomputed example bank, amplitude calibration, the folds and the cross-validation scorer."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from assistant.face.audio_features import FeatureConfig, frame_features  # noqa: E402
from assistant.face.geometry import mouth_opening  # noqa: E402
from assistant.face.mouth_shapes import NEUTRAL_MOUTH, articulate  # noqa: E402
from models.lipsync.config import GridSplit, NetConfig, TrainConfig  # noqa: E402
from models.lipsync.cv import FOLDS, REAL_VIDEOS, fold_of  # noqa: E402
from models.lipsync.dataset import SAMPLE_RATE, Clip  # noqa: E402
from models.lipsync.network import LipSyncNet  # noqa: E402
from models.lipsync.train import amplitude_scale, build_bank, calibrate_gain, normalise_amplitude  # noqa: E402


def speechy(seed: int = 0, seconds: float = 2.0) -> np.ndarray:
    """Buzzy syllables with gaps and a moving formant: enough spectral change to normalise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    env = (np.sin(2 * np.pi * 3.0 * t) > -0.2) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    x = np.sign(np.sin(2 * np.pi * 120 * t)) * 0.2 + 0.1 * np.sin(2 * np.pi * (600 + 400 * np.sin(2 * np.pi * 2 * t)) * t)
    return ((x * env) + 1e-3 * rng.standard_normal(len(t))).astype(np.float32)


def norm(model: LipSyncNet, audio: np.ndarray, **kw) -> np.ndarray:
    f = frame_features(audio, SAMPLE_RATE, FeatureConfig())
    with torch.no_grad():
        return model.normalise_utterance(torch.from_numpy(f)[None], **kw)[0].numpy()


@pytest.fixture(scope="module")
def tcn():
    torch.manual_seed(0)
    model = LipSyncNet(NetConfig(kind="tcn", hidden=16))
    model.eval()
    return model


def test_utterance_normalisation_removes_gain_and_channel(tcn):
    a = speechy()
    ref = norm(tcn, a)
    quiet = norm(tcn, a * 0.1)  # -20 dB: same speech, quieter microphone
    live = frame_features(a * 0.1, SAMPLE_RATE)[:, 0] > -20  # the zero-padded edge stays at the power floor
    assert live.sum() > 40 and np.abs(ref - quiet)[live].max() < 0.05
    # A fixed microphone colouring (first-order filter) shifts raw cepstra; normalised, far less.
    coloured = np.convolve(a, [1.0, -0.8])[: len(a)].astype(np.float32)
    raw_shift = np.abs(frame_features(coloured, SAMPLE_RATE) - frame_features(a, SAMPLE_RATE))[:, 1:13].mean()
    norm_shift = np.abs(norm(tcn, coloured) - ref)[:, 1:13].mean()
    assert norm_shift < 0.5 * raw_shift
    raw = frame_features(a, SAMPLE_RATE)
    assert not np.allclose(raw, ref)  # it did something


def test_silence_stays_quiet_after_normalisation(tcn):
    floor = NetConfig().energy_floor
    zeros = norm(tcn, np.zeros(16000, np.float32))
    hiss = norm(tcn, (np.random.default_rng(0).standard_normal(16000) * 3e-4).astype(np.float32))
    p = FeatureConfig().per_hop
    assert zeros[:, ::p].max() < -10  # digital silence far below the floor, not scaled up to loud
    assert hiss[:, ::p].max() < -3 and hiss[:, ::p].max() < floor + 10
    assert norm(tcn, speechy())[:, ::p].max() == pytest.approx(0.0, abs=0.3)  # loudest frame of speech ~ 0


def test_padding_does_not_change_the_normalisation(tcn):
    a = speechy(1, 1.2)
    f = torch.from_numpy(frame_features(a, SAMPLE_RATE))[None]
    t = f.shape[1]
    padded = torch.cat([f, torch.zeros(1, 20, f.shape[2])], 1)
    mask = torch.cat([torch.ones(1, t), torch.zeros(1, 20)], 1)
    with torch.no_grad():
        alone = tcn.normalise_utterance(f)[0]
        inpad = tcn.normalise_utterance(padded, mask)[0, :t]
        assert torch.allclose(alone, inpad, atol=1e-4)
        assert torch.allclose(tcn(f)[0], tcn(padded, mask)[0, :t], atol=1e-4)


def _clip(name: str, amp: float, seed: int = 0, frames: int = 50) -> Clip:
    rng = np.random.default_rng(seed)
    env = np.clip(np.sin(np.arange(frames) / 3.0 + rng.uniform(0, 6)), 0, None) * amp
    audio = speechy(seed, frames / 25.0)[: int(frames / 25 * SAMPLE_RATE)]
    return Clip(name, audio, articulate(env).astype(np.float32), 25.0, True)


def test_speaker_normalised_targets():
    small, wide = _clip("small", 0.12), _clip("wide", 0.3)
    for c in (small, wide):
        n = normalise_amplitude(c, 0.25)
        assert np.percentile(mouth_opening(n.mouth), 95) == pytest.approx(0.25, rel=0.08)
        assert np.allclose(n.mouth[mouth_opening(c.mouth) < 1e-6], NEUTRAL_MOUTH, atol=0.02)  # rest stays rest
    assert amplitude_scale(small.mouth, None) == 1.0
    assert normalise_amplitude(small, None) is small


def test_bank_versions_and_cache(tmp_path):
    cfg = TrainConfig(amp_ref=0.25)
    clips = [_clip("a", 0.2, 1), _clip("b", 0.3, 2, frames=40)]
    bank = build_bank(clips, cfg, 2, cache=tmp_path, progress=False)
    assert set(bank) == {"a", "b"} and len(bank["a"]) == 3
    f0, t0 = bank["a"][0]
    assert f0.shape == (50, FeatureConfig().dim) and t0.shape == (50, 40)
    assert not np.allclose(bank["a"][1][0][: len(f0) // 2], f0[: len(f0) // 2])  # augmented differs
    again = build_bank(clips, cfg, 2, cache=tmp_path, progress=False)  # from the cache
    for (fa, ta), (fb, tb) in zip(bank["b"], again["b"]):
        assert np.array_equal(fa, fb) and np.array_equal(ta, tb)


def test_gain_calibration_matches_the_real_amplitude(tcn):
    clips = [_clip("a", 0.25, 3), _clip("b", 0.2, 4)]
    cfg = TrainConfig(net=tcn.cfg)
    with torch.no_grad():  # a network that opens the mouth with loudness, but only a little
        tcn.head.weight.zero_()
        tcn.head.bias.copy_(torch.logit(tcn.neutral_unit))
        tcn.head.weight[2 * (66 - 48) + 1, :] = 0.012
        tcn.head.weight[2 * (62 - 48) + 1, :] = -0.012
    g = calibrate_gain(tcn, clips, cfg)
    from models.lipsync.train import predict_clip

    pred = np.percentile(np.concatenate([mouth_opening(predict_clip(tcn, c, cfg)) for c in clips]), 95)
    real = np.percentile(np.concatenate([mouth_opening(c.mouth) for c in clips]), 95)
    assert 1.05 < g < 3.0 and pred == pytest.approx(real, rel=0.05)


def test_every_real_speaker_is_held_out_exactly_once():
    names = [n for fold in FOLDS for n in fold]
    assert len(names) == len(set(names)) == len(REAL_VIDEOS) == 17
    assert set(names) == set(REAL_VIDEOS)
    assert all(fold_of(n) == k for k, fold in enumerate(FOLDS) for n in fold)
    assert set(GridSplit().heldout) <= set(REAL_VIDEOS)
    with pytest.raises(KeyError):
        fold_of("nobody")


def test_cross_validation_scores_each_clip_with_its_own_fold(tmp_path):
    from models.lipsync.evaluate import cross_validate, cv_table, fold_heldout, per_clip_table
    from models.lipsync.export import export

    clips = {n: _clip(n, 0.25, k) for k, n in enumerate(["s1", "s2", "s3"])}
    paths = []
    for k, held in enumerate([["s1", "s2"], ["s3"]]):
        torch.manual_seed(k)
        model = LipSyncNet(NetConfig(kind="tcn", hidden=8))
        model.eval()
        ckpt = {"features": TrainConfig().features.to_dict(), "target": TrainConfig().target.__dict__,
                "net": model.cfg.__dict__, "data": {"heldout": held}}
        assert export(model, ckpt, tmp_path / f"fold{k}.onnx") <= 1e-4
        paths.append(tmp_path / f"fold{k}.onnx")
    assert fold_heldout(paths[1]) == ["s3"]
    result = cross_validate(paths, clips)
    assert set(result) == {"lstm", "energy"}  # no transcripts: no viseme baseline
    assert set(result["lstm"]["per_clip"]) == {"s1", "s2", "s3"} and result["lstm"]["clips"] == 3
    for r in result.values():
        assert -1 <= r["corr"] <= r["best_corr"] + 1e-9 <= 1 + 1e-9 and r["amplitude_ratio"] > 0
    assert "s3" in per_clip_table(result) and "energy" in cv_table(result)
    no_meta = tmp_path / "plain.onnx"
    export(LipSyncNet(NetConfig(kind="tcn", hidden=8)).eval(), {"features": {}, "target": TrainConfig().target.__dict__,
                                                                 "net": {}}, no_meta)
    with pytest.raises(ValueError, match="held-out"):
        fold_heldout(no_meta)


def test_av_offset_is_undone_for_training_and_unsynced_clips_left_out():
    from models.lipsync.cv import clean_for_training, shift_clip

    c = _clip("late", 0.25, 5, frames=60)
    s = shift_clip(c, 3)
    spf = SAMPLE_RATE // 25
    assert s.name == "late@+3" and len(s.mouth) == 57 and np.array_equal(s.audio, c.audio[3 * spf :])
    assert np.array_equal(s.mouth, c.mouth[:57])
    e = shift_clip(c, -2)
    assert len(e.audio) == len(c.audio) and np.array_equal(e.audio[2 * spf :], c.audio[: len(c.audio) - 2 * spf])
    assert shift_clip(c, 0) is c
    sync = {"late": {"r0": 0.1, "best": 0.5, "lag": 3}, "fine": {"r0": 0.3, "best": 0.55, "lag": 1},
            "noise": {"r0": 0.0, "best": 0.1, "lag": -4}}
    out = clean_for_training({"late": c, "fine": c, "noise": c}, sync)
    assert set(out) == {"late", "fine"}
    assert out["late"].name == "late@+3" and out["fine"] is c  # a small gain is no evidence of an offset


def test_silence_gate_holds_the_neutral_mouth():
    torch.manual_seed(0)
    gated = LipSyncNet(NetConfig(kind="tcn", hidden=8)).eval()
    plain = LipSyncNet(NetConfig(kind="tcn", hidden=8, silence_gate=None)).eval()
    plain.load_state_dict(gated.state_dict())
    with torch.no_grad():
        gated.out_gain.fill_(2.0), plain.out_gain.fill_(2.0)
        quiet = torch.from_numpy(frame_features(np.zeros(16000, np.float32), SAMPLE_RATE))[None]
        loud = torch.from_numpy(frame_features(speechy(), SAMPLE_RATE))[None]
        assert torch.allclose(gated(quiet)[0], gated.neutral_unit.expand(25, -1), atol=1e-4)
        assert not torch.allclose(plain(quiet)[0], plain.neutral_unit.expand(25, -1), atol=1e-3)
        live = loud[0, :, 0] > -8  # speech frames: the gate is open
        assert torch.allclose(gated(loud)[0][live], plain(loud)[0][live], atol=1e-3)


def test_ensemble_averages_its_members_and_exports(tmp_path):
    from assistant.face.lstm_driver import LstmDriver
    from models.lipsync.export import export
    from models.lipsync.network import Ensemble

    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append(LipSyncNet(NetConfig(kind="tcn", hidden=8)).eval())
    ens = Ensemble(members).eval()
    f = torch.from_numpy(frame_features(speechy(), SAMPLE_RATE))[None]
    with torch.no_grad():
        assert torch.allclose(ens(f), (members[0](f) + members[1](f)) / 2, atol=1e-6)
        ens.out_gain.fill_(1.5)
        n = ens.neutral_unit
        assert torch.allclose(ens(f), n + 1.5 * ((members[0](f) + members[1](f)) / 2 - n), atol=1e-6)
    ckpt = {"features": TrainConfig().features.to_dict(), "target": TrainConfig().target.__dict__, "net": ens.cfg.__dict__}
    assert export(ens, ckpt, tmp_path / "ens.onnx") <= 1e-4
    assert LstmDriver(tmp_path / "ens.onnx", prefer_gpu=False).drive(speechy(), SAMPLE_RATE, 25).shape == (50, 20, 2)
