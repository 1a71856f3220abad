"""The one ONNX export-and-parity recipe: write a torch module as an ONNX graph, then prove it matches.

Every model we ship as ONNX goes through here (``models.lipsync.export``, ``models.neural.export``,
``models.mtcnn.export``, ``models.embedder``): the legacy TorchScript exporter (``dynamo=False``,
which needs no ``onnxscript``) at one opset, named inputs and outputs with their dynamic axes,
the model's own settings as JSON metadata, and a parity check that runs the file in onnxruntime
on the CPU against the module in torch and returns the largest absolute difference.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

OPSET = 17


def export(module: torch.nn.Module, example: Sequence[torch.Tensor], out: Path, inputs: Sequence[str],
           outputs: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
           metadata: Mapping[str, Any] | None = None, ignore_warnings: str | None = None) -> Path:
    """Write ``module`` (in eval mode) to ``out``; ``metadata`` entries are stored as JSON strings.

    ``ignore_warnings``: a regular expression for the exporter's ``UserWarning``s that are known
    and harmless for this model (``""``: every warning).
    """
    import onnx

    module.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        if ignore_warnings == "":
            warnings.simplefilter("ignore")
        elif ignore_warnings is not None:
            warnings.filterwarnings("ignore", message=ignore_warnings, category=UserWarning)
        torch.onnx.export(module, tuple(example), str(out), input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()}, opset_version=OPSET,
                          dynamo=False)
    if metadata:
        proto = onnx.load(str(out))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.save(proto, str(out))
    return out


def session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session on ``path`` (``threads``: intra-op threads, ``None`` for its default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(reference: Callable[..., Any], path: Path, cases: Iterable[Mapping[str, np.ndarray]],
           threads: int | None = None) -> float:
    """Max |onnx - torch| over every output of every case.

    ``reference`` is called under ``torch.no_grad()`` with the case's arrays as tensors, in the
    graph's input order; it returns a tensor or a tuple of them, in the graph's output order.
    """
    sess = session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    for case in cases:
        with torch.no_grad():
            ref = reference(*(torch.from_numpy(np.ascontiguousarray(case[n])) for n in names))
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        got = sess.run(None, {n: case[n] for n in names})
        for a, b in zip(refs, got, strict=True):
            worst = max(worst, float(np.abs(a.numpy() - b).max()))
    return worst


def within(worst: float, tolerance: float, what: str) -> int:
    """Exit status for an export command: 0 when ``worst <= tolerance``, else 1 with the reason logged."""
    if worst > tolerance:
        log.error("%s: ONNX parity %.2e exceeds %.0e", what, worst, tolerance)
        return 1
    log.info("%s: ONNX parity max |diff| = %.2e", what, worst)
    return 0
