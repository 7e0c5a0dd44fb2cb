"""Peak memory of a long img2img batch stays flat: 10 images against 100, in the same run.

    python benchmarks/bench_memory.py [--small 10] [--large 100] [--steps 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_img2img import make_sketches
from common import scumble

PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def peak_rss_mb(cmd: list[str]) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK, *cmd], check=True, capture_output=True, text=True).stdout
    return int(out.strip()) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (args.small, args.large):
            folder = Path(tmp) / f"in{count}"
            make_sketches(folder, count)
            peaks[count] = peak_rss_mb(scumble("img2img", str(folder), "-p", "a red circle", "--steps", str(args.steps), "--strength", "0.5", "-q", "-o", str(Path(tmp) / f"out{count}") + "/"))
    growth = peaks[args.large] / peaks[args.small] - 1
    for count, mb in peaks.items():
        print(f"img2img over {count:>4} images: peak RSS {mb:8.1f} MB")
    print(f"growth from {args.small} to {args.large} images: {100 * growth:+.1f}% (target < 10%) -> {'OK' if growth < 0.10 else 'MISSED'}")
    return 0 if growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
