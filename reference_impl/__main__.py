"""`python -m reference_impl` = the `reference_impl` console script."""

import sys

from .cli import main

sys.exit(main())
