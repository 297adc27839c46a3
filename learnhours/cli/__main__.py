"""`python -m learnhours.cli`: the `learnhours` command."""

import sys

from learnhours.cli import main

sys.exit(main())
