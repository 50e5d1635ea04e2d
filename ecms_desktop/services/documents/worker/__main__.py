"""``python -I -m ecms_desktop.services.documents.worker``: the document worker process."""

import sys

from ecms_desktop.services.documents.worker.main import main

sys.exit(main(sys.argv[1:]))
