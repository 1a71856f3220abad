from services.brain import main

raise SystemExit(main())
