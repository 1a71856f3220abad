"""The brain service: who is here, what they said, what to answer, what to send.

``python -m services.brain`` or ``assistant run brain``. Engines (sessions, skills, knowledge
base, mail store, turn tracking) are plain classes in this package; ``service.py`` is the thin
bus handler over them.
"""

import os

# The brain shares 2 cores with the renderer, hearing and voice: multi-threaded BLAS for our
# small matrices loses badly to contention (measured: 19 ms single-threaded vs 140 ms with two
# threads per embedding under load). Set before numpy is first imported in this process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    """Run the brain service (imported lazily so engine imports stay light)."""
    from .service import BrainService

    return BrainService.main(argv)
