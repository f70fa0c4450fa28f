import sys

from rtkit.cli import main

sys.exit(main())
