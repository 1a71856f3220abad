from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from assistant.face.lstm_driver import LstmDriver  # noqa: E402
from assistant.face.mouth_shapes import articulate  # noqa: E402
from models.lipsync.config import NetConfig, TrainConfig  # noqa: E402
from models.lipsync.dataset import SAMPLE_RATE, Clip  # noqa: E402
from models.lipsync.export import export  # noqa: E402
from models.lipsync.network import LipSyncNet, load_checkpoint  # noqa: E402
from models.lipsync.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def toy_clip(seed: int) -> Clip:
    """Bursts of a buzzy tone; the mouth opens with each burst (a learnable rule)."""
    rng = np.random.default_rng(seed)
    frames = 60
    env = np.zeros(frames)
    for _ in range(4):
        s = rng.integers(0, frames - 8)
        env[s : s + rng.integers(3, 8)] = rng.uniform(0.5, 1)
    t = np.arange(int(frames / 25 * SAMPLE_RATE)) / SAMPLE_RATE
    audio = np.repeat(env, len(t) // frames) * 0.3 * np.sign(np.sin(2 * np.pi * 140 * t[: frames * (len(t) // frames)]))
    return Clip(f"toy{seed}", audio.astype(np.float32), articulate(0.2 * env), 25.0, False)


def tiny_cfg(**kw) -> TrainConfig:
    return TrainConfig(net=NetConfig(hidden=16, **kw), epochs=6, batch=4, lr=1e-2, min_len=20, max_len=60, real_fraction=0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "tiny.pt"
    clips = [toy_clip(i) for i in range(12)]
    history = train(tiny_cfg(), [], clips, out, [], steps_per_epoch=6, progress=False)
    return out, history


def test_tiny_training_lowers_loss(tiny_run):
    _, history = tiny_run
    assert history["train"][-1] < 0.6 * history["train"][0]


def test_checkpoint_rebuilds_itself(tiny_run):
    model, ckpt = load_checkpoint(tiny_run[0])
    assert ckpt["net"]["hidden"] == 16 and "features" in ckpt and "history" in ckpt
    assert isinstance(model, LipSyncNet) and not model.training


@pytest.mark.parametrize("lookahead", [0, 3])
def test_onnx_parity_and_driver(tmp_path, lookahead):
    torch.manual_seed(0)
    model = LipSyncNet(NetConfig(hidden=16, lookahead=lookahead))
    model.eval()
    ckpt = {"features": TrainConfig().features.to_dict(), "target": TrainConfig().target.__dict__, "net": model.cfg.__dict__}
    worst = export(model, ckpt, tmp_path / "m.onnx")
    assert worst <= 1e-4
    d = LstmDriver(tmp_path / "m.onnx", prefer_gpu=False)
    assert d.drive(np.zeros(16000, np.int16), 16000, 30).shape == (30, 20, 2)
    assert d.drive(np.zeros(0, np.float32), 16000, 25).shape == (0, 20, 2)


def test_the_shipped_onnx_becomes_its_torch_network_again(tmp_path):
    """The avatar builder fine-tunes the shipped model, which ships as ONNX only: the rebuilt
    torch ensemble must compute what the ONNX file computes, and a saved fine-tune of it loads."""
    import onnxruntime as ort

    from models.lipsync.network import Ensemble, from_onnx, load_checkpoint

    shipped = REPO / "models" / "lipsync" / "weights" / "lipsync.onnx"
    model, ckpt = from_onnx(shipped)
    assert isinstance(model, Ensemble) and ckpt["members"] == len(model.members) == 2
    sess = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(1).standard_normal((1, 90, model.cfg.in_dim)) * model.feat_std.numpy()
         + model.feat_mean.numpy()).astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    want = sess.run(None, {"features": x})[0]
    assert np.abs(ours - want).max() < 1e-5
    # the two members differ (each head got its own folded weight, not one copied twice)
    assert not torch.equal(model.members[0].head.weight, model.members[1].head.weight)
    torch.save(dict(ckpt, state=model.state_dict()), tmp_path / "tuned.pt")
    again, _ = load_checkpoint(tmp_path / "tuned.pt")
    with torch.no_grad():
        assert np.abs(again(torch.from_numpy(x)).numpy() - want).max() < 1e-5
    (tmp_path / "bad.onnx").write_bytes(shipped.read_bytes()[:100])
    with pytest.raises(Exception):
        from_onnx(tmp_path / "bad.onnx")
