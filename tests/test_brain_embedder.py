"""The brain's MiniLM graph on onnxruntime against a torch forward of the same weights and the numpy forward it
replaced, and what its embeddings are good for."""

import subprocess
import sys

import numpy as np
import pytest

from .brain_helpers import embedder
from .procs import REPO

SENTENCES = [
    "Where are the toilets?",
    "What time does the library open on Sundays?",
    "Send a message to Bob saying I will be late.",
    "bin blue at f two now",
    "a",
    "Über-long words: antidisestablishmentarianism, pneumonoultramicroscopicsilicovolcanoconiosis!",
]


def _torch_reference(emb, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BERT forward written independently in torch (separate Q/K/V, torch's own erf GELU and layer norm)."""
    torch = pytest.importorskip("torch")
    from safetensors.numpy import load_file

    from services.brain.embedder import model_dir

    w = {k: torch.from_numpy(v) for k, v in load_file(str(model_dir() / "model.safetensors")).items()}
    F = torch.nn.functional
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask.astype(np.float32))
    n, length = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids_t] + w["embeddings.position_embeddings.weight"][:length] + w["embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (384,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], 1e-12)
    ext = (1.0 - mask_t)[:, None, None, :] * torch.finfo(torch.float32).min
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(t, name):
            return F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])

        def heads(t):
            return t.view(n, length, 12, 32).transpose(1, 2)

        q, k, v = (heads(lin(x, f"attention.self.{m}")) for m in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / 32 ** 0.5 + ext, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(n, length, 384)
        x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (384,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], 1e-12)
        h = F.gelu(lin(x, "intermediate.dense"))
        x = F.layer_norm(lin(h, "output.dense") + x, (384,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], 1e-12)
    pooled = (x * mask_t[:, :, None]).sum(1) / mask_t.sum(1, keepdim=True)
    return F.normalize(pooled, dim=1).numpy()


def test_onnx_graph_matches_torch_reference():
    emb = embedder()
    ids, mask = emb.tokenize(SENTENCES)
    ours = emb.embed(SENTENCES)
    ref = _torch_reference(emb, ids, mask)
    cos = (ours * ref).sum(1)
    assert cos.min() >= 0.999, cos
    assert np.abs(ours - ref).max() < 1e-3


def test_onnx_graph_gives_what_the_numpy_forward_gave():
    """The brain used to run this model in numpy: the graph on onnxruntime must not move any answer."""
    from services.brain.embedder import model_dir

    from .minilm_numpy import NumpyMiniLM

    emb = embedder()
    ref = NumpyMiniLM(model_dir())
    texts = SENTENCES + ["can I use the toilet", "when do you close", "wifi code please", "where should I put my car"]
    ours = emb.embed(texts)
    ids, mask = emb.tokenize(texts)  # one padded batch: also checks the mask against padding
    old = ref.forward(ids, mask)
    cos = (ours * old).sum(1)
    assert cos.min() >= 0.99999, cos
    assert np.abs(ours - old).max() < 1e-4
    # And the nearest knowledge-base question of each is the same under both.
    assert ((ours @ ours.T).argsort(1)[:, -2] == (old @ old.T).argsort(1)[:, -2]).all()


def test_embeddings_are_unit_length_and_independent_of_batching():
    emb = embedder()
    together = emb.embed(SENTENCES)
    alone = np.stack([emb.embed([s])[0] for s in SENTENCES])
    assert together.shape == (len(SENTENCES), 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.abs(together - alone).max() < 1e-4  # padding does not leak into the pooled vector


def test_paraphrases_score_higher_than_unrelated_sentences():
    emb = embedder()
    pairs = [
        ("Where are the toilets?", "I need to find a restroom", "What is the wifi password?"),
        ("When do you open in the morning?", "What are your opening hours?", "Where can I park my car?"),
        ("How do I get to the train station?", "Which way is the railway station?", "Is there a lost and found?"),
    ]
    for anchor, para, other in pairs:
        a, p, o = emb.embed([anchor, para, other])
        assert float(a @ p) > float(a @ o) + 0.2, (anchor, float(a @ p), float(a @ o))


def test_long_text_is_truncated_not_refused():
    emb = embedder()
    ids, _ = emb.tokenize(["word " * 5000])
    assert ids.shape[1] == emb.max_tokens == 256
    assert emb.embed(["word " * 5000]).shape == (1, 384)
    assert emb.embed([]).shape == (0, 384)


def test_brain_process_never_imports_torch():
    code = (
        "import sys, services.brain, services.brain.service as s; from assistant.config.schema import BrainSettings;"
        "kb = s.load_knowledge(BrainSettings()); assert kb is not None; kb.answer('where is the toilet');"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.strip() == "False False", out.stderr


def test_graph_is_built_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    pytest.importorskip("tokenizers", reason="needs the brain extra")
    from services.brain import embedder as module

    first = module.SentenceEmbedder(cache=tmp_path)
    files = list(tmp_path.glob("minilm-*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 50_000_000

    def no_build(*_):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(module, "build_graph", no_build)
    again = module.SentenceEmbedder(cache=tmp_path)
    assert np.array_equal(first.embed(SENTENCES[:2]), again.embed(SENTENCES[:2]))
    monkeypatch.undo()
    files[0].write_bytes(b"not a graph")  # damaged: rebuilt in memory, still right
    damaged = module.SentenceEmbedder(cache=tmp_path)
    assert np.abs(damaged.embed(SENTENCES[:2]) - first.embed(SENTENCES[:2])).max() < 1e-6
    assert not files[0].exists(), "a damaged graph is removed, to be made anew at the next start"
