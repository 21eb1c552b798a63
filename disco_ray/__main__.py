"""`python -m disco_ray ...`: the same as the `disco-ray` command."""

import sys

from disco_ray.cli import main

sys.exit(main())
