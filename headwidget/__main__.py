"""``python -m headwidget``: the ``headwidget`` command (see :mod:`headwidget.cli`)."""

import sys

from .cli import main

sys.exit(main())
