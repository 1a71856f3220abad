"""``python -m services.voice``: run the voice service."""

from .service import main

if __name__ == "__main__":
    raise SystemExit(main())
