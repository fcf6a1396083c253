"""``python -m purejaxpo`` is the ``purejaxpo`` command."""

import sys

from purejaxpo.cli import main

sys.exit(main())
