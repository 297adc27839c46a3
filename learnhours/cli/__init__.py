"""The `learnhours` command. Thin: parses arguments, calls flows and steps, prints for people.

One module per group of commands (ingest, status, explain, notify, plans, run, demo, db), the
parser, the output formats, and `main`, the boundary where errors become one sentence.
"""

from learnhours.cli.boundary import main

__all__ = ["main"]
