"""How long `dagster dev` / `dagster asset materialize` wait on our code: loading the definitions
against loading the ML stack they would pull in if heavy imports sat at module top.

    .venv/bin/python benchmarks/bench_startup.py --repeats 3

Prints a table of the best wall time of each import in a fresh interpreter, and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = {
    "moxi_pipeline.definitions": "import moxi_pipeline.definitions",
    "torch+transformers+trl+peft": "import torch, transformers, trl, peft",
    "both (heavy imports at top)": "import moxi_pipeline.definitions, torch, transformers, trl, peft",
}


def best_time_s(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {name: best_time_s(code, args.repeats) for name, code in CASES.items()}
    baseline = results["both (heavy imports at top)"]
    print(f"| import | best of {args.repeats} (s) | vs heavy-at-top |")
    print("|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
