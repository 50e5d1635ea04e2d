"""How quickly the command line answers: ``ecms --version``, ``ecms --help`` and ``ecms COMMAND --help`` against
``python -c pass`` (the interpreter's own start-up), in the same run, each started as a user starts it.

Each command runs ``--runs`` times in turn with the others (so a busy moment hurts all of them alike); printed:
the median and the best wall time of each, and the median's ratio to ``python -c pass``. With ``--ecms PATH``
it times another ``ecms`` (e.g. the one in a built bundle: ``dist/ecms-desktop/ecms``). With ``--before REV``
it also times the ``ecms_desktop`` of that git revision (unpacked into a temporary folder, run by this Python
without its site hooks, with the same packages) beside this checkout's, started the same way.

    .venv/bin/python bench/bench_cli.py [--runs 30] [--ecms .venv/bin/ecms] [--before d18b10d]

The goal is under 0.3 s for ``--version`` and ``--help`` on the 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - start


def source_runner(source: Path, folder: Path, name: str) -> str:
    """A script that runs the ``ecms`` of the ``ecms_desktop`` in ``source``: this Python without ``site`` (no
    editable-install hook), the source first on the path, then this environment's packages."""
    script = folder / name
    path = f"{source}:{sysconfig.get_paths()['purelib']}"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" -S -c '
                      f'"import sys; from ecms_desktop.cli import main; sys.exit(main())" "$@"\n')
    script.chmod(0o755)
    return str(script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    parser.add_argument("--ecms", default=str(Path(sys.executable).with_name("ecms")),
                        help="the ecms executable to time (default: the one beside this Python)")
    parser.add_argument("--before", metavar="REV", help="also time the ecms of this git revision (e.g. d18b10d)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ecms --version": [args.ecms, "--version"],
        "ecms --help": [args.ecms, "--help"],
        "ecms list --help": [args.ecms, "list", "--help"],
        "ecms audit-pack --help": [args.ecms, "audit-pack", "--help"],
    }
    if args.before:
        old = work / "before"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "ecms_desktop"], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old, filter="data")
        for label, source in ((f"{args.before}", old), ("this checkout", REPO)):
            runner = source_runner(source, work, f"ecms-{'before' if source == old else 'now'}")
            cases[f"{label}: --version"] = [runner, "--version"]
            cases[f"{label}: --help"] = [runner, "--help"]
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():  # one run each first: file caches warm, nothing counted
        timed(argv)
    for _ in range(args.runs):
        for name, argv in cases.items():
            times[name].append(timed(argv))
    base = statistics.median(times["python -c pass"])
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {args.runs} runs each; {args.ecms}")
    print(f"{'command':<28} {'median':>9} {'best':>9} {'× python -c pass':>17}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1000:>7.0f} ms {min(values) * 1000:>6.0f} ms {median / base:>16.1f}×")
    worst = max(statistics.median(times["ecms --version"]), statistics.median(times["ecms --help"]))
    print(f"goal: --version and --help under 300 ms: {'met' if worst < 0.3 else 'NOT met'} ({worst * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
