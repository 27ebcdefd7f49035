"""``python3 -m vitalstream ...`` is the same as the ``vitalstream`` console script."""

import sys

from vitalstream.stream.cli import main

sys.exit(main())
