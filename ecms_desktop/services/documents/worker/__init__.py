"""The code that runs inside the document worker process (see :mod:`ecms_desktop.services.documents.sandbox`).

The sandbox starts it as ``python -I -m ecms_desktop.services.documents.worker`` (a frozen build runs
itself with ``--document-worker``). It imports nothing from ``ecms_desktop`` but its own modules, on
purpose: the worker is the only place where untrusted customer files are parsed and rendered, so it is
kept small, imports only the standard library and PyMuPDF (the package ``__init__`` modules above it
hold docstrings only), and can be killed at any moment without losing anything; to read scans it runs
the ``tesseract`` program as a child process that dies with it. ``-I`` keeps the environment,
the user's site-packages and the current folder out of its imports.

* ``main``: the loop serving requests, and the operations on one open document.
* ``protocol``: frames and failures.
* ``pictures``: PNG encoding, image sizes, passwords, the book's page stamp.
* ``reading``: the words of a page (form fields, text layer, OCR).
"""
