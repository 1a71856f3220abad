"""The face renderer: avatar, face synthesis, idle life, playback-clock timeline and the service."""


def main(argv: list[str] | None = None) -> int:
    """Run the renderer service (imported lazily: the engines need no bus)."""
    from .service import main as run

    return run(argv)
