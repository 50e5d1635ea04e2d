import sys

from ecms_desktop.cli import main

sys.exit(main())
