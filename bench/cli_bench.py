"""CLI start-up time: median wall time of `ilab --help` against bare interpreter start-up, same session.

Usage: .venv/bin/python bench/cli_bench.py [--runs 30]
Target (issue 2): median `ilab --help` <= 0.10 s on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ILAB = str(Path(sys.executable).with_name("ilab"))
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "ilab --help": [ILAB, "--help"],
    "ilab model --help": [ILAB, "model", "--help"],
    "ilab --version": [ILAB, "--version"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved so background load hits every command alike
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass (baseline)"])
    print(f"{'command':<28} {'median s':>9} {'vs python':>10}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<28} {med:9.3f} {med / base:9.2f}x")
    verdict = "PASS" if statistics.median(times["ilab --help"]) <= 0.10 else "FAIL"
    print(f"target: ilab --help median <= 0.10 s: {verdict}")


if __name__ == "__main__":
    main()
