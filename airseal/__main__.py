"""``python -m airseal`` runs the ``airseal`` command."""

import sys

from airseal.appliance.cli import main

sys.exit(main())
