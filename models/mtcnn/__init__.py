"""MTCNN face detector (Zhang et al. 2016): the three networks in torch and their ONNX export.

The camera service runs the exported ONNX files (``weights/``) through onnxruntime; see
``MODEL_CARD.md`` for where the weights come from.
"""
