"""Loading a single-file SD 1.5 checkpoint and making one 512x512 image: load time, VAE decode time and peak RSS.

Rows, each in its own process, against diffusers' `from_single_file` in fp32 measured in the same run:
diffusers fp32, diffusers bf16 (`dtype=torch.bfloat16`), and scumble in bf16 (what `--dtype auto`
picks on a CPU with fast bf16) — first loading only, then loading and making one image
(`scumble txt2img` as a user runs it; the bare rows call the pipeline as diffusers documents). The
checkpoint is a random-weight SD 1.5 with the real architecture (benchmarks/sd15_random.py), built
once; its page cache is warmed first, so load times are not disk reads. Peak RSS is the process's
ru_maxrss, which counts the pages of a memory-mapped file as they are read. diffusers in fp32 uses
the file's pages in place and reads them on first use, so the load-only rows end by touching every
page of every weight (a few tenths of a second): load time and memory are then what a first step finds.

    python benchmarks/bench_load.py [--folder DIR] [--file fp32|fp16] [--steps 4] [--size 512] [--repeat 1]

`--layouts` measures instead what `--dtype auto` chooses for the decode and the UNet on the CPU: the
VAE decode (one image) and one CFG step of the UNet (batch 2) in fp32 and bf16, each contiguous and
channels-last, with the decode's extra peak RSS and its pixels against fp32 (0..255).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT, NEGATIVE, SEED = "a photo of a lighthouse on a cliff at sunset", "blurry, low quality", 1
ROWS = (
    ("diffusers-fp32", "diffusers from_single_file fp32"),
    ("diffusers-bf16", "diffusers from_single_file bf16"),
    ("scumble", "scumble --dtype auto (bf16)"),
)


def touch(components: dict) -> None:
    """Read one byte of every page of every weight: a memory-mapped fp32 load reads its pages only on first use."""
    import torch

    for module in components.values():
        if isinstance(module, torch.nn.Module):
            for tensor in [*module.parameters(), *module.buffers()]:
                raw = torch.empty(0, dtype=torch.uint8).set_(tensor.detach().untyped_storage())
                int(raw[::4096].sum())


def child(mode: str, file: str, generate: bool, steps: int, size: int, out: str) -> dict:
    """One row, in this process: returns load, decode and total seconds, and peak RSS in bytes."""
    import torch
    from diffusers import AutoencoderKL

    times = {"decode": 0.0}
    decode = AutoencoderKL.decode

    def timed_decode(self, *args, **kwargs):
        start = time.perf_counter()
        result = decode(self, *args, **kwargs)
        times["decode"] += time.perf_counter() - start
        return result

    AutoencoderKL.decode = timed_decode
    start = time.perf_counter()
    if mode.startswith("diffusers"):
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

        from scumble.core.loading.loaders import quiet_libraries
        from scumble.core.loading.sources import CONFIGS_ROOT

        quiet_libraries()
        dtype = torch.bfloat16 if mode.endswith("bf16") else torch.float32
        pipe = StableDiffusionPipeline.from_single_file(file, config=str(CONFIGS_ROOT / "sd15"), local_files_only=True, dtype=dtype, safety_checker=None, requires_safety_checker=False)
        if not generate:
            touch(pipe.components)
        times["load"] = time.perf_counter() - start
        if generate:
            pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
            pipe.set_progress_bar_config(disable=True)
            pipe(PROMPT, negative_prompt=NEGATIVE, width=size, height=size, num_inference_steps=steps, guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(SEED)).images[0].save(out)
    else:
        from scumble.core.loading.device import make_runtime
        from scumble.core.sampling.engine import Engine

        load = Engine.load.__func__

        def timed_load(cls, *args, **kwargs):  # the pipeline load and its placement on the device
            begin = time.perf_counter()
            engine = load(cls, *args, **kwargs)
            times["load"] = time.perf_counter() - begin
            return engine

        if not generate:
            touch(timed_load(Engine, file, make_runtime("auto", "auto")).components)
            times["load"] = time.perf_counter() - start
        else:
            from scumble.cli.app import main

            Engine.load = classmethod(timed_load)
            sys.argv = ["scumble", "txt2img", PROMPT, "-n", NEGATIVE, "--model", file, "--steps", str(steps), "--cfg", "7", "--sampler", "euler", "-W", str(size), "-H", str(size), "--seed", str(SEED), "--dtype", "auto", "-q", "--overwrite", "-o", out]
            try:
                main()
            except SystemExit as exc:
                if exc.code:
                    raise
    times["total"] = time.perf_counter() - start
    return times | {"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def layouts(size: int, repeat: int) -> None:
    """VAE decode (batch 1) and one UNet CFG step (batch 2) of SD 1.5 in fp32 and bf16, each contiguous and channels-last."""
    import threading

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from scumble.core.loading.loaders import quiet_libraries
    from scumble.core.loading.sources import CONFIGS_ROOT

    quiet_libraries()
    peak = {"now": 0}

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample():
        while True:
            peak["now"] = max(peak["now"], rss())
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(CONFIGS_ROOT / "sd15" / "vae")).eval()
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIGS_ROOT / "sd15" / "unet")).eval()
    latent = torch.randn(1, 4, size // 8, size // 8) / vae.config.scaling_factor  # what the pipeline hands the VAE
    sample_in, text, timestep = torch.randn(2, 4, size // 8, size // 8), torch.randn(2, 77, 768), torch.tensor([500, 500])
    variants = [(name, dtype, layout) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)) for layout in ("contiguous", "channels-last")]
    decode_s, step_s, decode_peak, pixels = {}, {}, {}, {}
    weights = {k: v.clone() for k, v in vae.state_dict().items()}  # the UNet's weights do not matter to its speed, so it is not kept
    with torch.inference_mode():
        for i in range(repeat + 1):  # the first round warms up oneDNN's kernels and is not counted
            for name, dtype, layout in variants if i % 2 == 0 else reversed(variants):
                fmt = torch.channels_last if layout == "channels-last" else torch.contiguous_format
                vae.to(torch.float32).load_state_dict(weights)  # the same fp32 weights for every row's pixels
                vae.to(dtype).to(memory_format=fmt), unet.to(dtype).to(memory_format=fmt)
                before = peak["now"] = rss()
                start = time.perf_counter()
                image = vae.decode(latent.to(dtype).contiguous(memory_format=fmt)).sample
                seconds = time.perf_counter() - start
                used = peak["now"] - before
                start = time.perf_counter()
                unet(sample_in.to(dtype).contiguous(memory_format=fmt), timestep, text.to(dtype))
                if i:
                    decode_s.setdefault((name, layout), []).append(seconds)
                    step_s.setdefault((name, layout), []).append(time.perf_counter() - start)
                    decode_peak[(name, layout)] = max(decode_peak.get((name, layout), 0), used)
                pixels[(name, layout)] = ((image.float().clamp(-1, 1) + 1) * 127.5).round()
    base_decode, base_step = statistics.median(decode_s[("fp32", "contiguous")]), statistics.median(step_s[("fp32", "contiguous")])
    print(f"SD 1.5 (random weights) at {size}x{size}: VAE decode of one image, UNet CFG step on batch 2; median of {repeat}, rows interleaved")
    print(f"{'dtype':<5} {'layout':<14} {'decode s':>9} {'vs fp32':>8} {'decode +RSS':>12} {'pixels vs fp32 max/mean':>24} {'step s':>8} {'vs fp32':>8}")
    for name, _dtype, layout in variants:
        d, st = statistics.median(decode_s[(name, layout)]), statistics.median(step_s[(name, layout)])
        diff = (pixels[(name, layout)] - pixels[("fp32", "contiguous")]).abs()
        print(f"{name:<5} {layout:<14} {d:9.2f} {d / base_decode:7.2f}x {decode_peak[(name, layout)] / 2**30:8.2f} GiB {diff.max():17.0f} / {diff.mean():.2f} {st:8.2f} {st / base_step:7.2f}x")


def run_row(mode: str, file: Path, generate: bool, args, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--path", str(file), "--steps", str(args.steps), "--size", str(args.size), "--out", str(out)] + (["--generate"] if generate else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    from sd15_random import DEFAULT_FOLDER, checkpoint

    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER), help="where the random-weight SD 1.5 files are (built there once)")
    parser.add_argument("--file", choices=("fp32", "fp16"), default="fp32", help="which of the two checkpoint files to load")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row (rows interleaved); medians are shown")
    parser.add_argument("--load-only", action="store_true", help="skip the rows that make an image")
    parser.add_argument("--layouts", action="store_true", help="instead: VAE decode and one UNet step in fp32/bf16, contiguous/channels-last")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.generate, args.steps, args.size, args.out)))
        return 0

    if args.layouts:
        layouts(args.size, args.repeat)
        return 0
    import torch

    file = checkpoint(args.file, args.folder)
    with open(file, "rb") as fh:  # warm the page cache: every row reads the file from memory, not disk
        while fh.read(1 << 24):
            pass
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {file.name} ({file.stat().st_size / 2**30:.2f} GiB, page cache warm)")
    print(f"load: from_single_file (scumble: Engine.load, which also places the model), then one read of every page of the weights; image: {args.size}x{args.size}, euler, {args.steps} steps, cfg 7, a negative prompt")
    groups = [(False, "load only")] + ([] if args.load_only else [(True, f"load + one {args.size}x{args.size} image")])
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_load-{os.getpid()}.png"
    ok = True
    for generate, title in groups:
        results = {mode: [] for mode, _ in ROWS}
        for i in range(args.repeat):
            for mode, _ in ROWS if i % 2 == 0 else reversed(ROWS):
                results[mode].append(run_row(mode, file, generate, args, out))
        med = {mode: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for mode, runs in results.items()}
        base = med["diffusers-fp32"]
        print(f"\n{title}, median of {args.repeat}")
        if generate:  # the load column is from_single_file alone: fp32 reads its pages later, in the first step
            print(f"{'row':<34} {'load s':>7} {'decode s':>9} {'total s':>8} {'vs fp32':>8} {'peak RSS':>10} {'vs fp32':>8}")
        else:
            print(f"{'row':<34} {'load s':>7} {'vs fp32':>8} {'peak RSS':>10} {'vs fp32':>8}")
        for mode, label in ROWS:
            m = med[mode]
            rss = f"{m['peak'] / 2**30:6.2f} GiB {m['peak'] / base['peak']:7.2f}x"
            if generate:
                print(f"{label:<34} {m['load']:7.2f} {m['decode']:9.2f} {m['total']:8.2f} {m['total'] / base['total']:7.2f}x {rss}")
            else:
                print(f"{label:<34} {m['load']:7.2f} {m['load'] / base['load']:7.2f}x {rss}")
        if generate:
            ok = med["scumble"]["peak"] < base["peak"]
            print(f"target: scumble bf16 peak RSS below diffusers fp32's -> {'OK' if ok else 'MISSED'}")
    out.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
