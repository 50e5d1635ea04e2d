"""How quickly the command line answers: ``ecms --version``, ``ecms --help`` and ``ecms COMMAND --help`` against
``python -c pass`` (the interpreter's own start-up), in the same run, each started as a user starts it.

Each command runs ``--runs`` times in turn with the others (so a busy moment hurts all of them alike); printed:
the median and the best wall time of each, and the median's ratio to ``python -c pass``. With ``--ecms PATH``
it times another ``ecms`` (e.g. the one in a built bundle: ``dist/ecms-desktop/ecms``).

    .venv/bin/python bench/bench_cli.py [--runs 30] [--ecms .venv/bin/ecms]

The goal is under 0.3 s for ``--version`` and ``--help`` on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    parser.add_argument("--ecms", default=str(Path(sys.executable).with_name("ecms")),
                        help="the ecms executable to time (default: the one beside this Python)")
    args = parser.parse_args()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ecms --version": [args.ecms, "--version"],
        "ecms --help": [args.ecms, "--help"],
        "ecms list --help": [args.ecms, "list", "--help"],
        "ecms audit-pack --help": [args.ecms, "audit-pack", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():  # one run each first: file caches warm, nothing counted
        timed(argv)
    for _ in range(args.runs):
        for name, argv in cases.items():
            times[name].append(timed(argv))
    base = statistics.median(times["python -c pass"])
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {args.runs} runs each; {args.ecms}")
    print(f"{'command':<24} {'median':>9} {'best':>9} {'× python -c pass':>17}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24} {median * 1000:>7.0f} ms {min(values) * 1000:>6.0f} ms {median / base:>16.1f}×")
    worst = max(statistics.median(times["ecms --version"]), statistics.median(times["ecms --help"]))
    print(f"goal: --version and --help under 300 ms: {'met' if worst < 0.3 else 'NOT met'} ({worst * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
