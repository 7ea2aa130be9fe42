"""`python -m tastemaker.cli`."""

import sys

from tastemaker.cli import main

sys.exit(main())
