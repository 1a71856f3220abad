"""The neural face renderer: landmark drawings -> photo-real mouth region (pix2pix and its
time-dependent version from "Everybody Dance Now"), the avatar builder's dataset, training,
evaluation and ONNX export. Run time (no torch) lives in ``services.renderer.neural``."""
