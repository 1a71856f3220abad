"""Lip-sync network: audio features -> mouth landmarks (dataset, synthetic corpus, training,
evaluation, ONNX export). Run-time code lives in ``assistant.face``; see ``weights/MODEL_CARD.md``."""
