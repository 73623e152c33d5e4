"""`python -m xnornet ...` is `xnornet ...`."""

from .cli import main

raise SystemExit(main())
