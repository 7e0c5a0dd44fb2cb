"""What a LoRA costs per image, unfused and fused (--fuse-lora), against the same model without one, in one run.

The LoRA is random (rank 16 on every attention projection of the UNet, as a typical style LoRA);
its cost does not depend on its values. Rows are interleaved image by image so the machine's drift
falls on every row alike.

    python benchmarks/bench_lora.py [--model scumble-mini] [--count 10] [--steps 20] [--rank 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def random_lora(model_folder: Path, rank: int, out: Path) -> Path:
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_folder / "unet")
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)
    return out / "pytorch_lora_weights.safetensors"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scumble-mini")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()

    from scumble.core.loading import sources
    from scumble.core.request.types import ModelOptions
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling

    folder = Path(sources.resolve(args.model).location)
    with tempfile.TemporaryDirectory() as tmp:
        lora = random_lora(folder, args.rank, Path(tmp))
        rows = {
            "no LoRA": ModelOptions(model=args.model, device="cpu", dtype="fp32"),
            "LoRA, unfused": ModelOptions(model=args.model, device="cpu", dtype="fp32", lora=((str(lora), 1.0),)),
            "LoRA, --fuse-lora": ModelOptions(model=args.model, device="cpu", dtype="fp32", lora=((str(lora), 1.0),), fuse_lora=True),
        }
        engines = {}
        for name, options in rows.items():
            started = time.perf_counter()
            engines[name] = Engine.from_options(options)
            load = time.perf_counter() - started
            engines[name].txt2img([ImageJob("warm up", "", 0, 0)], Sampling(steps=2))
            print(f"{name:<20} load {load:6.2f}s")
        times: dict[str, list[float]] = {name: [] for name in rows}
        sampling = Sampling(steps=args.steps, cfg=7.0)
        for i in range(args.count):
            for name, engine in engines.items():
                started = time.perf_counter()
                engine.txt2img([ImageJob("a red circle on a blue background", "", 100 + i, i)], sampling)
                times[name].append(time.perf_counter() - started)
    base = statistics.median(times["no LoRA"])
    print(f"{args.model}, {args.steps} steps, median of {args.count}, LoRA rank {args.rank} on every attention projection")
    for name, values in times.items():
        print(f"{name:<20} {statistics.median(values):7.3f}s per image  {statistics.median(values) / base:6.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
