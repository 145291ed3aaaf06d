import sys

from teleradiology.cli import main

sys.exit(main())
