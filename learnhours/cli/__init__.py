"""The `learnhours` command. Thin: parses arguments, calls flows and steps, prints for people.

One module per group of commands (ingest, status, explain, notify, plans, run, demo, db), the
parser, the output formats, and `main`, the boundary where errors become one sentence.
"""

import os

# Polars' allocator (jemalloc) keeps the pages of freed frames for up to 1.5 s before it gives
# them back (its own default), so a command's high-water mark holds each stage's frames on top
# of the next's: `status` at 400,000 people peaked at 557 MB so, 463 MB returning them at once.
# Read by Polars when it loads, after its own settings; an operator's own setting stands.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from learnhours.cli.boundary import main  # noqa: E402 - after the allocator's setting

__all__ = ["main"]
