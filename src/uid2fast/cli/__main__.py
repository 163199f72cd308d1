"""``python -m uid2fast.cli``: the same as the ``uid2fast`` command."""
import sys

from . import main

sys.exit(main())
