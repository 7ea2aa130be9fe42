"""`python -m tastemaker.services.cli`."""

import sys

from tastemaker.services.cli import main

sys.exit(main())
