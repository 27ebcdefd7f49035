"""``python3 -m vitalstream ...`` is the same as the ``vitalstream`` console script.

The kernel does not import the application shell: it runs whatever the installed
package registers as its ``vitalstream`` console script (``pyproject.toml``).
"""

import sys
from importlib.metadata import entry_points

(script,) = entry_points(group="console_scripts", name="vitalstream")
sys.exit(script.load()())
