"""Frozen entry point of the GUI (also serves as the document worker when started with --document-worker)."""

import multiprocessing
import sys

# The determination run starts a worker process; in a frozen build it re-enters here.
multiprocessing.freeze_support()

if sys.argv[1:2] == ["--document-worker"]:
    from ecms_desktop.services.documents.worker.main import main as worker_main

    sys.exit(worker_main(sys.argv[2:]))

from ecms_desktop.app import main

sys.exit(main())
