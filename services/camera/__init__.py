"""The camera service: capture, face tracking, recognition and face-priority auto-exposure.

Engines (no bus in them): ``detection`` (faces and tracks), ``presence`` (distance, engagement,
events), ``exposure`` (the auto-exposure loop), ``recognition`` (descriptors and the gallery),
``pipeline`` (one frame through all of them). ``service`` is the thin bus handler.
"""


def main(argv=None) -> int:
    from .service import CameraService

    return CameraService.main(argv)
