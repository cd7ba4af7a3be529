"""``python -m benchmarks``: the whole bench (see :mod:`benchmarks.bench`)."""

from .bench import main

raise SystemExit(main())
