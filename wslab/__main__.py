"""``python -m wslab``: the same as the ``wslab`` command (see :mod:`wslab.cli`)."""

import sys

from .cli import main

sys.exit(main())
