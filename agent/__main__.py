"""``python -m agent`` runs `airseal-agent`."""

import sys

from agent.cli import main

sys.exit(main())
