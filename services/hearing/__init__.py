"""Hearing: the microphone, VAD endpointing, streaming STT and echo cancellation against the voice.

Run with ``python -m services.hearing`` (``assistant run hearing``).
"""
