from plexus.cli import main

raise SystemExit(main())
