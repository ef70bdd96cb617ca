"""``python -m kachery_flows``: the ``kachery-flows`` command."""

import sys

from .cli import main

sys.exit(main())
