import sys

from airseal.appliance.cli import main

sys.exit(main())
