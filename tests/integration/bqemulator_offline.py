"""Start bqemulator without network: the same CLI, minus DuckDB's spatial extension download.

Offline, `bqemulator start` dies trying to download the spatial extension; nothing
here needs geography functions. Used by the test fixtures and the benchmarks only:
    python tests/integration/bqemulator_offline.py start --rest-port P --grpc-port Q ...
Also set BQEMU_ENABLE_FORMAT_EXTENSIONS=false (the format extensions download too).
"""

from __future__ import annotations

import sys

from bqemulator.cli import main
from bqemulator.storage.engine import DuckDBEngine

DuckDBEngine._load_spatial = lambda self: None  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
