"""``python -m services.ops``: run the status page."""

from .service import main

if __name__ == "__main__":
    raise SystemExit(main())
