"""``python -m agent`` runs `airseal-agent`."""

import sys

from airseal.agent.cli import main

sys.exit(main())
