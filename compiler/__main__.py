"""``python -m microlith``: the command line (see ``microlith.app.cli``)."""

import sys

from microlith.app.cli import main

sys.exit(main())
