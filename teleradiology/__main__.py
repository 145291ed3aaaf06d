"""``python -m teleradiology``: the ``telemed`` command.

An interrupt (Ctrl-C on the console, or the SIGINT a parent sends its DICOM listener
processes to stop them) that comes while the program is still starting, before its own
handlers are set, ends it quietly with the shell's code for an interrupt, not a traceback.
"""

import sys

try:
    from teleradiology.cli import main

    code = main()
except KeyboardInterrupt:
    code = 130
sys.exit(code)
