"""Frozen entry point of the `ecms` command-line tool."""

import multiprocessing
import sys

# The determination run starts a worker process; in a frozen build it re-enters here.
multiprocessing.freeze_support()

from ecms_desktop.cli import main

sys.exit(main())
