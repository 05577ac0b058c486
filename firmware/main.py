"""Boot entry point on the device: start the Plexus node unless the button is held (safe mode -> REPL)."""

import asyncio

from plexnode import app

if not app.safe_mode():
    asyncio.run(app.main())
