"""One classifier-free-guidance step of a real-size SD 1.5 UNet in fp32 and bf16, against large matmuls.

The UNet has the real SD 1.5 configuration (shipped in core/loading/configs/sd15) and random
weights: the cost of a step does not depend on the weights. A CFG step is one UNet call on a
batch of 2 (unconditional and conditional) at 64x64 latents (512x512 pixels). Large matmuls in
the same dtype show what the machine can do at best, so the table says how close each step is
to that limit.

    python benchmarks/bench_precision.py [--size 512] [--repeat 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def matmul_gflops(dtype: torch.dtype, n: int = 4096, repeat: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up: first call picks the kernel
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def unet_step_seconds(dtype: torch.dtype, size: int, repeat: int) -> tuple[float, float]:
    """Median seconds of one CFG step, and the UNet's GFLOP per step measured by the profiler's counter."""
    from diffusers import UNet2DConditionModel

    from scumble.core.loading.loaders import quiet_libraries
    from scumble.core.loading.sources import CONFIGS_ROOT

    quiet_libraries()

    config = UNet2DConditionModel.load_config(CONFIGS_ROOT / "sd15" / "unet")
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(config).to(dtype).eval()
    latents = torch.randn(2, 4, size // 8, size // 8).to(dtype)
    text = torch.randn(2, 77, config["cross_attention_dim"]).to(dtype)
    timestep = torch.tensor([500, 500])
    with torch.inference_mode():
        unet(latents, timestep, text)  # warm-up
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            unet(latents, timestep, text)
            times.append(time.perf_counter() - start)
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            unet(latents, timestep, text)
    return statistics.median(times), counter.get_total_flops() / 1e9


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from scumble.core.loading.device import bf16_supported

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, fast bf16: {bf16_supported()}")
    print(f"one CFG step (UNet on batch 2) of SD 1.5 at {args.size}x{args.size}, median of {args.repeat}")
    print(f"{'dtype':<6} {'matmul GFLOP/s':>15} {'step s':>8} {'step GFLOP/s':>13} {'of matmul':>10} {'vs fp32 step':>13}")
    fp32_step = None
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peak = matmul_gflops(dtype)
        seconds, gflop = unet_step_seconds(dtype, args.size, args.repeat)
        fp32_step = fp32_step or seconds
        rate = gflop / seconds
        print(f"{name:<6} {peak:15.1f} {seconds:8.2f} {rate:13.1f} {rate / peak:9.0%} {seconds / fp32_step:12.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
