"""``python -m services.renderer``: run the renderer service."""

from .service import main

raise SystemExit(main())
