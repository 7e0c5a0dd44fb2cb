"""Measure one lever of the recipe at a time: run variants side by side, judge them on validation prompts.

    python -m scumble.training.variants --out runs/ --common vae_seconds=150 --variant object_weight=0 --variant object_weight=3

Each variant is a whole recipe run (its own --work and export) differing from the others only in its
--variant settings. On a GPU they run in parallel; on a CPU run one at a time (--serial). On an H200 three at
once each ran at about 0.75x a lone run's steps a second (the networks are small enough that a step is bound by
Python and kernel launches), so three variants cost about 1.3x the time of one, not 3x. The variant with the best mean validation score is copied to
OUT/best, and OUT/variants.json holds every variant's settings, final scores and speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

# The targets: the mean of these picks the winner.
SCORES = ("object_color", "background", "position", "one_object", "shape", "two_objects", "scene_sky", "scene_body", "scene_ground", "one_object_sizes")


def command(out: Path, name: str, settings: list[str], device: str) -> list[str]:
    sets = [arg for item in settings for arg in ("--set", item)]
    return [sys.executable, "-m", "scumble.training.recipe", "--device", device, "--work", str(out / f"{name}.work"), "--out", str(out / name), *sets]


def final_scores(folder: Path) -> dict | None:
    recorded = folder / "recipe.json"
    if not recorded.exists():
        return None
    history = json.loads(recorded.read_text())["history"]
    return history[-1] if history else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--common", action="append", default=[], metavar="KEY=VALUE", help="a recipe field every variant shares")
    parser.add_argument("--variant", action="append", required=True, metavar="KEY=VALUE[,KEY=VALUE]", help="one variant's own fields")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--serial", action="store_true", help="one variant at a time (a CPU)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [f"v{i}" for i in range(len(args.variant))]
    runs = {}
    for name, variant in zip(names, args.variant):
        cmd = command(args.out, name, args.common + variant.split(","), args.device)
        log = open(args.out / f"{name}.log", "w")  # noqa: SIM115 - closed when the run ends
        runs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        if args.serial:
            runs[name][0].wait()
    for proc, log in runs.values():
        proc.wait()
        log.close()
    table = {}
    for name, variant in zip(names, args.variant):
        scores = final_scores(args.out / name)
        mean = sum(scores[k] for k in SCORES if k in scores) / len(SCORES) if scores else None
        table[name] = {"settings": variant, "returncode": runs[name][0].returncode, "scores": scores, "mean": mean}
        print(f"{name} {variant}: " + ("failed" if scores is None else f"mean {mean:.1f} " + " ".join(f"{k} {scores.get(k, 0):.0f}" for k in SCORES)), flush=True)
    judged = {n: t for n, t in table.items() if t["mean"] is not None}
    if judged:
        best = max(judged, key=lambda n: judged[n]["mean"])
        shutil.rmtree(args.out / "best", ignore_errors=True)
        shutil.copytree(args.out / best, args.out / "best")
        table["best"] = best
        print(f"best: {best} ({judged[best]['settings']})", flush=True)
    (args.out / "variants.json").write_text(json.dumps({"common": args.common, "variants": table}, indent=2))
    return 0 if judged else 1


if __name__ == "__main__":
    sys.exit(main())
