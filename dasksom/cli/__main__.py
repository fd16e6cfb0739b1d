"""``python -m dasksom.cli``: the ``dasksom`` command."""

import sys

from dasksom.cli.main import main

sys.exit(main())
