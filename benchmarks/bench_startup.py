"""`scumble --help` must not pay for torch: compare with `import diffusers`, measured in the same run.

    python benchmarks/bench_startup.py
"""

from __future__ import annotations

import subprocess
import sys

from common import python, row, scumble, wall


def main() -> int:
    baseline = wall(python("-c", "import diffusers"), repeat=3)
    print(row("baseline: python -c 'import diffusers'", baseline, baseline))
    worst = 0.0
    for args in (["--help"], ["txt2img", "--help"], ["--version"]):
        seconds = wall(scumble(*args), repeat=5)
        worst = max(worst, seconds / baseline)
        print(row("scumble " + " ".join(args), seconds, baseline))
    imported = subprocess.run(python("-X", "importtime", "-m", "scumble", "txt2img", "--help"), capture_output=True, text=True).stderr
    heavy = sorted({line.split("|")[-1].strip().split(".")[0] for line in imported.splitlines() if line.split("|")[-1].strip().split(".")[0] in ("torch", "diffusers", "transformers")})
    print(f"heavy modules imported by txt2img --help: {heavy or 'none'}")
    print(f"target: <= 0.100x; worst {worst:.3f}x -> {'OK' if worst <= 0.1 and not heavy else 'MISSED'}")
    return 0 if worst <= 0.1 and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
