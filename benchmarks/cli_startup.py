"""Median wall time of ``star --help`` (a fresh interpreter each run): python benchmarks/cli_startup.py [RUNS]."""
import statistics
import subprocess
import sys
import time


def time_help(runs: int = 5) -> list:
    """Wall seconds of ``python -m star_plugin.cli --help``, one fresh process per run."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "star_plugin.cli", "--help"], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times = time_help(runs)
    print("runs: " + ", ".join(f"{t:.2f}" for t in times))
    print(f"median {statistics.median(times):.2f} s")
