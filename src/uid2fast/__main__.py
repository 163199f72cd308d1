"""``python -m uid2fast``: the same as the ``uid2fast`` command."""
import sys

from .cli import main

sys.exit(main())
