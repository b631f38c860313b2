"""``python -m pixelfade_fast.cli`` (what torchrun runs)."""
import sys

from . import main

sys.exit(main())
