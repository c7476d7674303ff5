"""``python -m lab``: the ``lab`` command, for environments where the script is not on PATH."""

import sys

from lab.cli import main

sys.exit(main())
