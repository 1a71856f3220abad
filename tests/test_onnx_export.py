"""The shared ONNX export-and-parity recipe (``models.onnx_export``) and the MTCNN export that uses it."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from models import onnx_export  # noqa: E402


class _TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.lin(x)
        return torch.tanh(y), y.sum(-1)


def _cases(rng, sizes):
    return [{"x": rng.standard_normal((n, 4)).astype(np.float32)} for n in sizes]


def test_export_writes_names_axes_and_metadata_and_parity_holds(tmp_path):
    net = _TwoHeads()
    out = onnx_export.export(net, (torch.zeros(2, 4),), tmp_path / "sub" / "net.onnx", ["x"], ["a", "b"],
                             {"x": {0: "n"}, "a": {0: "n"}, "b": {0: "n"}}, {"cfg": {"k": 1}, "note": "plain"})
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["cfg"]) == {"k": 1} and meta["note"] == "plain"
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["a", "b"]
    rng = np.random.default_rng(0)
    worst = onnx_export.parity(net, out, _cases(rng, (1, 5, 9)))  # other batch sizes than the example's
    assert worst < 1e-5
    assert onnx_export.within(worst, 1e-4, "net") == 0


def test_parity_sees_a_graph_that_differs_from_the_module(tmp_path):
    net = _TwoHeads()
    out = onnx_export.export(net, (torch.zeros(2, 4),), tmp_path / "net.onnx", ["x"], ["a", "b"], {"x": {0: "n"}})
    with torch.no_grad():
        net.lin.bias += 0.5  # the module moves on; the file does not
    worst = onnx_export.parity(net, out, _cases(np.random.default_rng(1), (3,)))
    assert worst > 0.1
    assert onnx_export.within(worst, 1e-4, "net") == 1


def test_mtcnn_export_through_the_helper_matches_torch(tmp_path):
    import importlib.util

    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch (the MTCNN weights) is not installed")
    from models.mtcnn.export import main

    assert main([str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.glob("*.onnx")} == {"pnet.onnx", "rnet.onnx", "onet.onnx"}
