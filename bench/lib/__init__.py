"""Measuring code shared by the benches and the tests, kept out of the runtime packages.

Nothing under ``assistant/``, ``services/``, ``hardware/`` or ``models/`` imports it (checked by
``tests/test_layers.py``): word error rate (``wer``), the kiosk sentences spoken in the speech fixtures
(``sentences``), scoring the camera pipeline against the simulator's ground truth (``camera_eval``),
re-measuring what the renderer drew (``renderer_quality``) and staged multi-person conversations
(``talkers``).
"""
