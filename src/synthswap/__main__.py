import sys

from synthswap.cli import main

sys.exit(main())
