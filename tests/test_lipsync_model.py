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
