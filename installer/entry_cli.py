"""Frozen entry point of the `ecms` command-line tool."""

import sys

from ecms_desktop.cli import main

sys.exit(main())
