"""``python -m minivae`` is the ``minivae`` command."""

import sys

from minivae.cli import main

sys.exit(main())
