import sys

from deepep.cli import main

sys.exit(main())
