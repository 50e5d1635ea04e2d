"""Running the ``ecms`` command line inside the test process, as a user would type it."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from ecms_desktop.cli import main


def ecms(*args: str) -> tuple[int, str, str]:
    """``ecms ARGS...``: its exit status (a usage error's too), standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
