"""`python -m appliance.cli` runs the meshprint command."""

import sys

from appliance.cli import main

sys.exit(main())
