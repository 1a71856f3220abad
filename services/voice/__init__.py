"""The voice service: text to speech, the speaker and the playback clock.

Engines and devices here are plain classes with no bus in them; the service module wires them
to ``voice.say`` / ``voice.stop`` and publishes utterances, the playback clock and ``voice.done``.
"""
