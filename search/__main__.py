"""``python -m search`` is the ``overfit`` command."""

import sys

from search.cli import main

sys.exit(main())
