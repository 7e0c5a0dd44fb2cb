"""`scumble txt2img` against a bare diffusers script making the same image, measured in the same run.

Both are whole processes (start-up, import, load, generate, write), as a user runs them. The
script checks the two images are pixel-identical before it reports any ratio.

    python benchmarks/bench_txt2img.py [--model FOLDER] [--steps 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common import python, row, scumble, wall

BARE = """
import sys, torch
from diffusers import StableDiffusionPipeline
folder, prompt, seed, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
image = pipe(prompt=[prompt], negative_prompt=[""], num_inference_steps=steps, guidance_scale=7.0,
             generator=[torch.Generator("cpu").manual_seed(seed)]).images[0]
image.save(out)
"""


def main() -> int:
    from scumble.core.loading.sources import BUILTIN_MODELS

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(BUILTIN_MODELS["scumble-mini"]))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    prompt, seed = "a red circle on a blue background", 1234
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.png", Path(tmp) / "bare.png"
        bare_cmd = python("-c", BARE, args.model, prompt, str(seed), str(args.steps), str(theirs))
        our_cmd = scumble("txt2img", prompt, "--model", args.model, "--seed", str(seed), "--steps", str(args.steps), "--dtype", "fp32", "-o", str(ours), "--overwrite", "-q")  # the bare script runs fp32
        baseline = wall(bare_cmd, args.repeat)
        seconds = wall(our_cmd, args.repeat)
        same = np.array_equal(np.asarray(Image.open(ours).convert("RGB")), np.asarray(Image.open(theirs).convert("RGB")))
    print(f"model {args.model}, {args.steps} steps, median of {args.repeat}")
    print(row("baseline: bare diffusers script", baseline, baseline))
    print(row("scumble txt2img", seconds, baseline))
    print(f"pixels identical: {same}")
    ok = same and seconds / baseline <= 1.1
    print(f"target: <= 1.100x with identical pixels -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
