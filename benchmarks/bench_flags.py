"""Each speed flag on the built-in model: seconds per image and adherence, against plain fp32 in the same run.

Rows: fp32 (the baseline), bf16, --channels-last, --compile, --cfg-cutoff 0.2 and 0.4, --vae tiny,
--step-cache 2 and 3, --noise-schedule ays (at the same steps and at 10), --backend openvino, and combinations. Every row's engine is loaded and warmed up first (--compile's one-off compile
time is reported apart), then each prompt goes through all rows in turn, so the machine's drift
falls on every row alike. Adherence uses the same held-out prompts and seeds for every row, so
differences come from the flag alone.

    python benchmarks/bench_flags.py [--count 100] [--steps 20] [--only bf16,tiny]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

ROWS = {
    "fp32": {},
    "bf16": {"dtype": "bf16"},
    "channels-last": {"channels_last": True},
    "compile": {"compile": True},
    "cfg-cutoff 0.2": {"cfg_cutoff": 0.2},
    "cfg-cutoff 0.4": {"cfg_cutoff": 0.4},
    "vae tiny": {"vae": "tiny"},
    "bf16 + vae tiny + cfg-cutoff 0.2": {"dtype": "bf16", "vae": "tiny", "cfg_cutoff": 0.2},
    "step-cache 2": {"step_cache": 2},
    "step-cache 3": {"step_cache": 3},
    "ays": {"noise_schedule": "ays"},
    "ays 10 steps": {"noise_schedule": "ays", "steps": 10},
    "tome 0.5": {"tome": 0.5},
    "bf16 + step-cache 2": {"dtype": "bf16", "step_cache": 2},
    "bf16 + step-cache 2 + cfg-cutoff 0.2": {"dtype": "bf16", "step_cache": 2, "cfg_cutoff": 0.2},
    "bf16 + step-cache 3 + cfg-cutoff 0.2": {"dtype": "bf16", "step_cache": 3, "cfg_cutoff": 0.2},
    "openvino": {"dtype": "bf16", "backend": "openvino"},
    "openvino + step-cache 2": {"dtype": "bf16", "backend": "openvino", "step_cache": 2},
    "openvino fp32": {"backend": "openvino"},
}
SAMPLING_FLAGS = ("cfg_cutoff", "step_cache", "tome", "noise_schedule", "steps")  # the rest are runtime or model flags


def load_row(flags: dict, steps: int, cfg: float):
    """An engine with the row's flags, warmed up (so --compile's one-off cost is timed apart)."""
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling

    runtime = make_runtime("cpu", flags.get("dtype", "fp32"), channels_last=flags.get("channels_last", False), compile=flags.get("compile", False), backend=flags.get("backend", "torch"))
    engine = Engine.load("scumble-mini", runtime, vae=flags.get("vae", ""))
    sampling = Sampling(**{"steps": steps, "cfg": cfg} | {k: v for k, v in flags.items() if k in SAMPLING_FLAGS})
    start = time.perf_counter()
    engine.txt2img([ImageJob("a warm-up square", "", 0, 0)], sampling)
    return engine, sampling, time.perf_counter() - start


def main() -> int:
    from scumble.core.sampling.engine import ImageJob
    from scumble.training import adherence

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--only", default="", help="comma-separated row names (fp32 is always run)")
    args = parser.parse_args()
    wanted = ["fp32"] + [name for name in ROWS if name != "fp32" and (not args.only or any(part in name for part in args.only.split(",")))]
    rows = {name: load_row(ROWS[name], args.steps, args.cfg) for name in wanted}
    targets = adherence.held_out_targets(args.count)
    seconds = {name: [] for name in wanted}
    results = {name: [] for name in wanted}
    # Round-robin: every prompt goes through every row before the next, so the machine's drift over
    # the run (10% here) falls on all rows alike instead of on whichever ran last.
    for i, target in enumerate(targets):
        for name, (engine, sampling, _) in rows.items():
            start = time.perf_counter()
            image = engine.txt2img([ImageJob(target.prompt, "", 1000 + i, i)], sampling)[0]
            seconds[name].append(time.perf_counter() - start)
            results[name].append(adherence.score(target, adherence.read_picture(np.asarray(image.convert("RGB")))))
    print(f"built-in model, {args.count} held-out prompts, {args.steps} steps, cfg {args.cfg}; seconds: median per image, rows interleaved, after one warm-up")
    print(f"{'flags':<34} {'s/image':>8} {'vs fp32':>8} {'warm-up s':>10} {'colour':>7} {'backgr':>7} {'position':>9} {'one obj':>8} {'worst Δ':>8}")
    keys = ("object_color", "background", "position", "one_object")
    base_scores, base_seconds = adherence.summarize(results["fp32"]), statistics.median(seconds["fp32"])
    for name in wanted:
        scores, median = adherence.summarize(results[name]), statistics.median(seconds[name])
        worst = min(scores[k] - base_scores[k] for k in keys)
        print(f"{name:<34} {median:8.3f} {median / base_seconds:7.3f}x {rows[name][2]:10.1f} " + " ".join(f"{scores[k]:6.0f}%" for k in keys[:2]) + f" {scores['position']:8.0f}% {scores['one_object']:7.0f}% {worst:+7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
