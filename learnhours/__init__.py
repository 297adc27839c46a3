"""learnhours: nightly learning-hours compliance for the HR offices of Taiwan's government agencies."""

import os

# Polars' allocator (jemalloc) keeps the pages of freed frames for up to 1.5 s before it gives
# them back (its own default), so a process's high-water mark holds each stage's frames on top
# of the next's: `status` at 400,000 people peaked at 557 MB so, 463 MB returning them at once.
# Read by Polars when it loads, after its own settings: set here, before any of the package's
# modules loads Polars, it reaches the command, the nightly flow's run and a Dask worker alike.
# An operator's own setting stands.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

__version__ = "0.1.0"
