"""Each speed flag on the built-in model: seconds per image and adherence, against plain fp32 in the same run.

Rows: fp32 (the baseline), bf16, --channels-last, --compile, --cfg-cutoff 0.2 and 0.4, --vae tiny,
and all the ones that pay off together. Seconds are the median per image after one warm-up image
(so --compile's one-off compile time is reported separately). Adherence uses the same held-out
prompts and seeds for every row, so differences come from the flag alone.

    python benchmarks/bench_flags.py [--count 100] [--steps 20] [--only bf16,tiny]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench_adherence import evaluate

ROWS = {
    "fp32": {},
    "bf16": {"dtype": "bf16"},
    "channels-last": {"channels_last": True},
    "compile": {"compile": True},
    "cfg-cutoff 0.2": {"cfg_cutoff": 0.2},
    "cfg-cutoff 0.4": {"cfg_cutoff": 0.4},
    "vae tiny": {"vae": "tiny"},
    "bf16 + vae tiny + cfg-cutoff 0.2": {"dtype": "bf16", "vae": "tiny", "cfg_cutoff": 0.2},
}


def run_row(flags: dict, count: int, steps: int, cfg: float) -> dict:
    from scumble.pipelines.device import make_runtime
    from scumble.pipelines.engine import Engine, ImageJob, Sampling

    runtime = make_runtime("cpu", flags.get("dtype", "fp32"), channels_last=flags.get("channels_last", False), compile=flags.get("compile", False))
    engine = Engine.load("scumble-mini", runtime, vae=flags.get("vae", ""))
    sampling = Sampling(steps=steps, cfg=cfg, cfg_cutoff=flags.get("cfg_cutoff", 0.0))
    start = time.perf_counter()
    engine.txt2img([ImageJob("a warm-up square", "", 0, 0)], sampling)
    warmup = time.perf_counter() - start
    scores, _, seconds = evaluate(engine, sampling, count)
    return {"seconds": statistics.median(seconds), "warmup": warmup, **scores}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--only", default="", help="comma-separated row names (fp32 is always run)")
    args = parser.parse_args()
    wanted = ["fp32"] + [name for name in ROWS if name != "fp32" and (not args.only or any(part in name for part in args.only.split(",")))]
    print(f"built-in model, {args.count} held-out prompts, {args.steps} steps, cfg {args.cfg}; seconds: median per image after one warm-up")
    print(f"{'flags':<34} {'s/image':>8} {'vs fp32':>8} {'warm-up s':>10} {'colour':>7} {'backgr':>7} {'position':>9} {'one obj':>8} {'worst Δ':>8}")
    base = None
    for name in wanted:
        row = run_row(ROWS[name], args.count, args.steps, args.cfg)
        base = base or row
        keys = ("object_color", "background", "position", "one_object")
        worst = min(row[k] - base[k] for k in keys)
        print(f"{name:<34} {row['seconds']:8.3f} {row['seconds'] / base['seconds']:7.3f}x {row['warmup']:10.1f} " + " ".join(f"{row[k]:6.0f}%" for k in keys[:2]) + f" {row['position']:8.0f}% {row['one_object']:7.0f}% {worst:+7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
