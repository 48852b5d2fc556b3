"""`python -m rpyc_explorer` starts the desktop application."""

import sys

from rpyc_explorer.main import main

sys.exit(main())
