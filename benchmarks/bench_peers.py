"""Peers: scumble against plain diffusers, stable-diffusion.cpp and OpenVINO on one random-weight SD 1.5 checkpoint.

The checkpoint has the real SD 1.5 architecture (the configurations shipped in core/loading/configs/sd15,
with its real CLIP tokenizer) and random weights: the cost of a step does not depend on the weights, nor
on which token ids the prompt becomes. It is made once under --work and kept: a diffusers folder (fp32),
one A1111-layout `.safetensors` file (fp16, the usual download; every engine but OpenVINO loads this
file), a random TAESD for `--vae tiny`, and OpenVINO's export of the folder.

Every row makes one 512x512 image with Euler, CFG 7 and a negative prompt (two UNet passes a step), the
same prompt and seed, in its own process, at two step counts (--steps-pair, 4 and 8 by default). Rows
are interleaved: each repeat runs every row once before the next repeat starts, and the table gives
medians. What each column means:

  load s        from spawning the process to the model being ready: interpreter start, imports, reading
                the file, any conversion or compilation (OpenVINO compiles its IR, stable-diffusion.cpp's
                q8_0 quantises while loading). scumble: until its first text-encoder call.
  per step s    (generation at 8 steps - generation at 4 steps) / 4: text encoding, decoding and writing
                the PNG are the same in both and drop out. Generation is from ready to the PNG written.
  decode s      the VAE decode alone, timed inside the process (diffusers, scumble: around the VAE's
                decode; OpenVINO: around its VAE decoder; stable-diffusion.cpp: its own log line).
  end-to-end s  the wall time of the whole process at the larger step count, from spawn to exit.
  20 steps s    end-to-end + (20 - 8) x per step: what a 20-step picture would take (estimated).
  peak RSS GiB  the process's maximum resident set (wait4's rusage).
  GFLOP/s       GFLOP of one CFG step / per step. The GFLOP are counted for the UNet at this size by
                torch's FlopCounterMode on the meta device with the explicit attention processor, so
                attention is counted too (the fused CPU SDPA kernel is invisible to the counter):
                1,606.5 GFLOP at 512x512, two UNet forwards of about 803.
  of fp32/bf16  that rate against a large matmul of each dtype, measured in the same run.

scumble rows run `python -m scumble txt2img --model FILE ...` exactly as a user would, inside a runner
that only wraps two diffusers methods with timers first (the first text-encoder call marks "ready",
the VAE's decode is timed). The speed flags are the table SCUMBLE_FLAGS below; a flag the installed
scumble does not know is skipped with the reason.

The peers are optional (`pip install -e '.[peers]'`), best in their own virtual environment; name its
interpreter with --peers-python and the diffusers and scumble rows keep running in this one. A peer
that cannot be imported or fails is listed at the end with the reason.

    python benchmarks/bench_peers.py --tiny                     # smoke test of every row, a few minutes
    python benchmarks/bench_peers.py --peers-python ~/peers-venv/bin/python [--repeat 3]
    python benchmarks/bench_peers.py --only diffusers,scumble:default --repeat 1
    python benchmarks/bench_peers.py --size 64 --steps-pair 1 2  # every engine on the real architecture, quickly
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
PROMPT = "a photograph of an astronaut riding a horse on the moon, highly detailed"
NEGATIVE = "blurry, low quality, watermark, text"
CFG = 7.0
SEED = 1

# The peers' rows, ENGINE:CONFIG. diffusers: the dtype; sdcpp: stable-diffusion.cpp's wtype ("default": the
# file's own types, here f16); openvino: the INFERENCE_PRECISION_HINT ("default": none given).
PEER_ROWS = ["diffusers:fp32", "diffusers:bf16", "sdcpp:default", "sdcpp:q8_0", "openvino:default", "openvino:bf16"]
EXTRA_ROWS = ["sdcpp:f32", "sdcpp:bf16", "openvino:f32"]  # run only when --only names them

# scumble's rows: name, the txt2img arguments the row adds, and a pattern `scumble txt2img --help` must
# match for the installed scumble to know the flag (None: always there). One line per flag.
# {taesd} is the random TAESD this script makes: `--vae tiny` would fetch TAESD from the hub for an SD 1.5 file.
SCUMBLE_FLAGS = [
    # --dtype auto (bf16 on a CPU with fast bf16, else fp32), --backend auto (OpenVINO for SD 1.5 where it is
    # installed), and the step cache the default gives a 20-step picture: --step-cache 0 turns it off below 20
    # steps, so the 4- and 8-step runs of the per-step figure ask for it.
    ("default", ["--step-cache", "2"], r"--step-cache"),
    ("torch", ["--backend", "torch", "--step-cache", "2"], r"--backend"),  # the default before --backend auto
    ("no-step-cache", ["--step-cache", "1"], r"--step-cache"),  # the defaults with every UNet call whole: the 4-vs-8 difference is a plain step
    ("step-cache-3", ["--step-cache", "3"], r"--step-cache"),
    ("fp32", ["--dtype", "fp32"], None),
    ("bf16", ["--dtype", "bf16"], None),
    ("channels-last", ["--channels-last"], r"--channels-last"),
    ("compile", ["--compile"], r"--compile\b"),
    ("cfg-cutoff-0.25", ["--cfg-cutoff", "0.25"], r"--cfg-cutoff"),  # 1 of 4 and 2 of 8 steps unguided: the 4-vs-8 difference stays exact
    ("vae-tiny", ["--vae", "{taesd}"], r"--vae\b"),
    ("ays", ["--noise-schedule", "ays"], r"\bays\b"),  # Align Your Steps: same cost a step, fewer steps needed
    ("tome-0.5", ["--tome", "0.5"], r"--tome\b"),
    # The UNet in OpenVINO, with the default step cache, and without. A warm-up run converts before timing
    # (needs_warm_up): a first run's conversion would land in its generation time.
    ("openvino", ["--backend", "openvino", "--step-cache", "2"], r"--backend"),
    ("openvino-no-step-cache", ["--backend", "openvino", "--step-cache", "1"], r"--backend"),
    ("openvino-fp32", ["--backend", "openvino", "--dtype", "fp32"], r"--backend"),
]

# Tiny random configuration for --tiny: the SD 1.5 block structure with a few channels.
TINY_UNET = {
    "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1, "block_out_channels": [32, 32, 64, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32, "attention_head_dim": 8, "norm_num_groups": 32,
}
TINY_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "block_out_channels": [16, 16, 32, 32], "norm_num_groups": 8,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4, "sample_size": 64,
}
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 32, "vocab_size": 49408, "max_position_embeddings": 77}

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}


# --------------------------------------------------------------------------------------------------
# The random checkpoint: diffusers layout to the original (A1111, CompVis) layout
# --------------------------------------------------------------------------------------------------


def unet_key_map(config: dict) -> list[tuple[str, str]]:
    """(diffusers prefix, original prefix) pairs for a UNet2DConditionModel of SD 1.x's block structure."""
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."), ("mid_block.resnets.1.", "middle_block.2.")]
    layers, blocks = config["layers_per_block"], len(config["block_out_channels"])
    for i, kind in enumerate(config["down_block_types"]):
        for j in range(layers):
            index = 1 + i * (layers + 1) + j
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{index}.0."))
            if kind.startswith("CrossAttn"):
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{index}.1."))
        if i < blocks - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op."))
    for i, kind in enumerate(config["up_block_types"]):
        attention = kind.startswith("CrossAttn")
        for j in range(layers + 1):
            index = i * (layers + 1) + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{index}.0."))
            if attention:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{index}.1."))
        if i < blocks - 1:
            pairs.append((f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{i * (layers + 1) + layers}.{2 if attention else 1}.conv."))
    return pairs


UNET_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
               ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]
VAE_RENAMES = [("conv_shortcut.", "nin_shortcut."), ("conv_norm_out.", "norm_out."), ("mid_block.resnets.0.", "mid.block_1."),
               ("mid_block.resnets.1.", "mid.block_2."), ("mid_block.attentions.0.", "mid.attn_1.")]
VAE_ATTENTION = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]


def unet_to_original(state: dict, config: dict) -> dict:
    pairs = sorted(unet_key_map(config), key=lambda pair: -len(pair[0]))
    out = {}
    for key, value in state.items():
        prefix = next((pair for pair in pairs if key.startswith(pair[0])), None)
        if prefix is None:
            raise KeyError(f"UNet key without an original name: {key}")
        rest = key[len(prefix[0]):]
        if ".resnets." in prefix[0]:
            rest = next((new + rest[len(old):] for old, new in UNET_RESNET if rest.startswith(old)), rest)
        out["model.diffusion_model." + prefix[1] + rest] = value
    return out


def vae_to_original(state: dict, blocks: int) -> dict:
    out = {}
    for key, value in state.items():
        new = key
        for i in range(blocks):
            new = new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            new = new.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            new = new.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{blocks - 1 - i}.block.")
            new = new.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{blocks - 1 - i}.upsample.")
        for old, repl in VAE_RENAMES:
            new = new.replace(old, repl)
        if ".mid.attn_1." in new:
            for old, repl in VAE_ATTENTION:
                new = new.replace(".mid.attn_1." + old, ".mid.attn_1." + repl)
            if value.ndim == 2:  # the original's attention projections are 1x1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


def canonical_clip(state: dict) -> dict:
    """CLIP text-encoder weights under the names every release reads (text_model.*); transformers 5.2x saves them without the prefix."""
    return {(key if key.startswith("text_model.") else "text_model." + key): value for key, value in state.items() if not key.endswith("position_ids")}


def prepare(work: Path, tiny: bool) -> dict:
    """Make the random checkpoint (diffusers folder, single file, TAESD) and check the file loads back to the same weights."""
    import torch
    from diffusers import (
        AutoencoderKL,
        AutoencoderTiny,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from safetensors.torch import save_file
    from scumble.core.loading.sources import CONFIGS_ROOT
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    shipped = CONFIGS_ROOT / "sd15"
    torch.manual_seed(0)
    unet_config = {**UNet2DConditionModel.load_config(shipped / "unet"), **(TINY_UNET if tiny else {})}
    vae_config = {**AutoencoderKL.load_config(shipped / "vae"), **(TINY_VAE if tiny else {})}
    text_config = CLIPTextConfig.from_pretrained(shipped / "text_encoder")
    for key, value in (TINY_TEXT if tiny else {}).items():
        setattr(text_config, key, value)
    started = time.perf_counter()
    unet = UNet2DConditionModel.from_config(unet_config).eval()
    vae = AutoencoderKL.from_config(vae_config).eval()
    text_encoder = CLIPTextModel(text_config).eval()
    tokenizer = CLIPTokenizer.from_pretrained(shipped / "tokenizer")  # the real CLIP vocabulary, on disk
    scheduler = EulerDiscreteScheduler.from_config(json.loads((shipped / "scheduler" / "scheduler_config.json").read_text()))
    print(f"random models built in {time.perf_counter() - started:.1f}s", flush=True)
    folder = work / "diffusers"
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    original = unet_to_original(unet.state_dict(), unet_config)
    original |= vae_to_original(vae.state_dict(), len(vae_config["block_out_channels"]))
    clip = canonical_clip(text_encoder.state_dict())
    save_file({key: value.contiguous() for key, value in clip.items()}, str(folder / "text_encoder" / "model.safetensors"), metadata={"format": "pt"})
    original |= {"cond_stage_model.transformer." + key: value for key, value in clip.items()}
    original = {key: value.detach().to(torch.float16).contiguous() for key, value in original.items()}
    del pipe, unet, vae, text_encoder
    model_file = work / "model.safetensors"
    save_file(original, str(model_file), metadata={"format": "pt", "note": "random weights, made by scumble benchmarks/bench_peers.py"})
    del original
    check_roundtrip(model_file, folder)
    AutoencoderTiny().save_pretrained(work / "taesd")  # TAESD's configuration is AutoencoderTiny's default
    return {"model": str(model_file), "diffusers": str(folder), "taesd": str(work / "taesd"), "tiny": tiny}


def check_roundtrip(model_file: Path, folder: Path) -> None:
    """diffusers' own single-file loader must read the file back to exactly the folder's weights (in fp16)."""
    import torch
    from diffusers import StableDiffusionPipeline

    loaded = StableDiffusionPipeline.from_single_file(str(model_file), config=str(folder), local_files_only=True, safety_checker=None,
                                                      requires_safety_checker=False, **diffusers_kwargs(torch.float16))
    for name in ("unet", "vae", "text_encoder"):
        module = getattr(loaded, name)
        kwargs = {"dtype": torch.float16} if name == "text_encoder" else diffusers_kwargs(torch.float16)
        reference = type(module).from_pretrained(folder / name, **kwargs)
        mine, theirs = module.state_dict(), reference.state_dict()
        theirs = {key: value for key, value in theirs.items() if not key.endswith("position_ids")}
        mine = {key: value for key, value in mine.items() if not key.endswith("position_ids")}
        if mine.keys() != theirs.keys():
            raise SystemExit(f"round trip: {name} keys differ: {sorted(set(mine) ^ set(theirs))[:5]}")
        bad = [key for key in mine if not torch.equal(mine[key], theirs[key])]
        if bad:
            raise SystemExit(f"round trip: {name} has {len(bad)} tensors that differ, e.g. {bad[:3]}")
        del reference
    print("round trip: diffusers' single-file loader reads back the same weights", flush=True)


def export_openvino(prepared: dict, target: Path) -> None:
    from optimum.intel import OVStableDiffusionPipeline

    pipe = OVStableDiffusionPipeline.from_pretrained(prepared["diffusers"], export=True, compile=False, load_in_8bit=False)
    pipe.save_pretrained(target)


# --------------------------------------------------------------------------------------------------
# Runners: one engine, one configuration, one image, in this process
# --------------------------------------------------------------------------------------------------


class Marks:
    def __init__(self, t0: float):
        self.t0, self.ready, self.decode = t0, None, 0.0

    def set_ready(self) -> None:
        if self.ready is None:
            self.ready = time.time()

    def timed(self, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.decode += time.perf_counter() - start
        return wrapper

    def result(self, **extra) -> dict:
        end = time.time()
        ready = self.ready or end
        return {"ready_s": ready - self.t0, "gen_s": end - ready, "decode_s": self.decode, **extra}


def diffusers_kwargs(dtype) -> dict:
    import diffusers
    from packaging.version import Version

    return {"dtype": dtype} if Version(diffusers.__version__) >= Version("0.42") else {"torch_dtype": dtype}


def run_diffusers(config: str, a, marks: Marks, out: Path) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    from diffusers import StableDiffusionPipeline

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[config]
    pipe = StableDiffusionPipeline.from_single_file(a.model, config=a.diffusers, local_files_only=True, safety_checker=None,
                                                    requires_safety_checker=False, **diffusers_kwargs(dtype))
    generate(pipe, pipe.vae, "decode", a, marks, out)
    return marks.result(threads=torch.get_num_threads())


def generate(pipe, decoder, method: str, a, marks: Marks, out: Path) -> None:
    """A diffusers-style pipeline's one picture on the row's settings, with Euler, `decoder.method` timed."""
    import torch
    from diffusers import EulerDiscreteScheduler

    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    marks.set_ready()
    setattr(decoder, method, marks.timed(getattr(decoder, method)))
    image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=a.steps, guidance_scale=CFG, width=a.size, height=a.size,
                 generator=torch.Generator().manual_seed(SEED)).images[0]
    image.save(out)


def run_openvino(config: str, a, marks: Marks, out: Path) -> dict:
    from optimum.intel import OVStableDiffusionPipeline

    ov_config = {"INFERENCE_NUM_THREADS": str(a.threads)}
    if config != "default":
        ov_config["INFERENCE_PRECISION_HINT"] = config
    pipe = OVStableDiffusionPipeline.from_pretrained(a.openvino, ov_config=ov_config, compile=False)
    pipe.reshape(batch_size=1, height=a.size, width=a.size, num_images_per_prompt=1)  # static shapes: fastest, as first seen
    pipe.compile()
    generate(pipe, pipe.vae_decoder, "forward", a, marks, out)
    hint = pipe.unet.request.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    return marks.result(info=f"UNet precision {precision}")


_SDCPP_LOG: list[str] = []


def run_sdcpp(config: str, a, marks: Marks, out: Path) -> dict:
    import ctypes

    import stable_diffusion_cpp as sdcpp
    from stable_diffusion_cpp import StableDiffusion

    @sdcpp.sd_log_callback
    def capture(level, text, data):
        line = text.decode("utf-8", errors="replace")
        _SDCPP_LOG.append(line)
        print(line, end="", file=sys.stderr, flush=True)

    globals()["_sdcpp_callback"] = capture  # ctypes must keep the callback alive
    sdcpp.sd_set_log_callback(capture, ctypes.c_void_p(0))
    sd = StableDiffusion(model_path=a.model, wtype=config, n_threads=a.threads, vae_decode_only=True, verbose=True)
    marks.set_ready()
    images = sd.generate_image(prompt=PROMPT, negative_prompt=NEGATIVE, width=a.size, height=a.size, cfg_scale=CFG,
                               sample_method="euler", sample_steps=a.steps, seed=SEED)
    images[0].save(out)
    log = "".join(_SDCPP_LOG)
    decode = re.findall(r"decode_first_stage completed, taking ([\d.]+) ?s", log)
    marks.decode = float(decode[-1]) if decode else float("nan")
    version = re.search(r"Version: ([^\n]+)", log)
    return marks.result(info=f"{version.group(1).strip() if version else '?'}, wtype {config}", threads=a.threads)


def run_scumble(name: str, a, marks: Marks, argv: list[str]) -> dict:
    """`python -m scumble ARGV`, as runpy runs it for -m, after wrapping two methods with timers."""
    import runpy

    from diffusers import AutoencoderKL, AutoencoderTiny
    from transformers import CLIPTextModel

    original_forward = CLIPTextModel.forward

    def forward(self, *args, **kwargs):
        marks.set_ready()
        return original_forward(self, *args, **kwargs)

    CLIPTextModel.forward = forward
    for cls in (AutoencoderKL, AutoencoderTiny):
        cls.decode = marks.timed(cls.decode)
    sys.argv = ["scumble", *argv]
    code = 0
    try:
        runpy.run_module("scumble", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if code:
        raise SystemExit(code)
    return marks.result()


def run_machine(a) -> dict:
    """Large matmuls of each dtype, and the GFLOP of one CFG step (two UNet forwards) at this size."""
    import torch

    torch.set_num_threads(a.threads)
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from torch.utils.flop_counter import FlopCounterMode

    config = UNet2DConditionModel.load_config(Path(a.diffusers) / "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    unet.set_attn_processor(AttnProcessor())  # explicit matmuls: the counter sees attention
    latent = a.size // 8
    with FlopCounterMode(display=False) as counter:
        unet(torch.empty(2, 4, latent, latent, device="meta"), torch.tensor([500, 500], device="meta"),
             torch.empty(2, 77, config["cross_attention_dim"], device="meta"))
    peaks = {}
    n = 1024 if a.tiny else 4096
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        x @ y
        times = []
        for _ in range(5):
            start = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - start)
        peaks[name] = 2 * n**3 / statistics.median(times) / 1e9
    return {"gflop_per_step": counter.get_total_flops() / 1e9, "matmul": peaks, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def run_probe(engine: str) -> dict:
    """Can this interpreter run ENGINE? Its versions, or why not."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(package):
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    try:
        if engine == "sdcpp":
            import stable_diffusion_cpp  # noqa: F401
            return {"ok": True, "versions": {"stable-diffusion-cpp-python": ver("stable-diffusion-cpp-python")}}
        if engine == "openvino":
            from optimum.intel import OVStableDiffusionPipeline  # noqa: F401
            return {"ok": True, "versions": {name: ver(name) for name in ("openvino", "optimum-intel", "optimum", "diffusers", "transformers")}}
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        return {"ok": True, "versions": {name: ver(name) for name in ("torch", "diffusers", "transformers", "scumble")}}
    except Exception as exc:  # noqa: BLE001 - whatever the import raises is the reason the row cannot run
        return {"ok": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def runner(a, rest: list[str]) -> int:
    marks = Marks(a.t0)
    engine, _, config = a.run.partition(":")
    out = Path(a.out) if a.out else None
    if engine == "prepare":
        result = prepare(Path(a.work_dir), a.tiny)
    elif engine == "export":
        export_openvino({"diffusers": a.diffusers}, Path(a.openvino))
        result = {}
    elif engine == "machine":
        result = run_machine(a)
    elif engine == "probe":
        result = run_probe(config)
    elif engine == "diffusers":
        result = run_diffusers(config, a, marks, out)
    elif engine == "openvino":
        result = run_openvino(config, a, marks, out)
    elif engine == "sdcpp":
        result = run_sdcpp(config, a, marks, out)
    elif engine == "scumble":
        result = run_scumble(config, a, marks, rest)
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    Path(a.result).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------------


def spawn(python: str, run: str, args: list[str], env: dict, timeout: float, log: Path | None = None) -> dict:
    """Run one runner process; its result, wall time and peak RSS, or why it failed."""
    with tempfile.TemporaryDirectory(prefix="bench_peers-") as tmp:
        result_file, log_file = Path(tmp) / "result.json", (log or Path(tmp) / "log.txt")
        t0 = time.time()
        cmd = [python, str(SCRIPT), "--run", run, "--result", str(result_file), "--t0", repr(t0), *args]
        start = time.perf_counter()
        with open(log_file, "wb") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        record = {"wall_s": wall, "rss_gib": usage.ru_maxrss / 2**20, "code": code}
        if code == 0 and result_file.exists():
            return record | json.loads(result_file.read_text())
        tail = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()][-12:]
        why = "timed out" if wall >= timeout else f"exit code {code}"
        return record | {"error": why, "log": tail}


def reason_of(record: dict) -> str:
    """One line out of a failed run's log: the last error-looking line, else the last line."""
    lines = record.get("log") or []
    for line in reversed(lines):
        if re.search(r"(Error|Exception|error|failed|Traceback|Killed)", line) and not line.startswith("Traceback"):
            return f"{record['error']}: {line.strip()[:300]}"
    return f"{record['error']}: {lines[-1].strip()[:300]}" if lines else record["error"]


def scumble_rows(python: str, env: dict) -> tuple[list[str], dict[str, str]]:
    """scumble's rows the installed scumble knows; the others with the reason."""
    help_text = subprocess.run([python, "-m", "scumble", "txt2img", "--help"], check=False, capture_output=True, text=True, env={**env, "COLUMNS": "200"}).stdout
    rows, skipped = [], {}
    for name, _, needs in SCUMBLE_FLAGS:
        if needs and not re.search(needs, help_text):
            skipped[f"scumble:{name}"] = f"this scumble's `txt2img --help` has no match for {needs!r}: the flag is not there yet"
        else:
            rows.append(f"scumble:{name}")
    return rows, skipped


def needs_warm_up(row: str) -> bool:
    """Rows whose first process fills an on-disk cache that later ones reuse: torch.compile's inductor cache, or
    the OpenVINO conversion that --backend openvino, and --backend auto for SD 1.5, make on a first run."""
    engine, _, config = row.partition(":")
    extra = next((extra for name, extra, _ in SCUMBLE_FLAGS if name == config), [])
    return engine == "scumble" and ("--compile" in extra or not ({"torch", "--tome"} & set(extra)))


def wanted(row: str, only: list[str]) -> bool:
    return not only or any(row == item or row.startswith(item + ":") or (":" not in item and row.split(":")[0] == item) for item in only)


def fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None or math.isnan(value) else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=0, help="interleaved repeats; the table gives medians (default 3, or 1 with --tiny)")
    parser.add_argument("--steps-pair", type=int, nargs=2, default=(4, 8), metavar=("FEW", "MORE"), help="the two step counts whose difference gives the per-step time")
    parser.add_argument("--size", type=int, default=0, help="width and height (0: 512, or 64 with --tiny)")
    parser.add_argument("--only", default="", help="comma-separated rows or engines: diffusers, sdcpp, openvino, scumble, or ENGINE:CONFIG")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every engine (default: all CPUs)")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "scumble" / "bench_peers"), help="where the random checkpoint and exports are kept")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model: a smoke test of the whole script")
    parser.add_argument("--peers-python", default=sys.executable, help="the interpreter with the peers installed (default: this one)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one process may take")
    parser.add_argument("--rebuild", action="store_true", help="make the random checkpoint and exports again")
    # runner mode (internal)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--diffusers", help=argparse.SUPPRESS)
    parser.add_argument("--openvino", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        argv, rest = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    a = parser.parse_args(argv)
    a.size = a.size or (64 if a.tiny else 512)
    a.repeat = a.repeat or (1 if a.tiny else 3)
    if a.run:
        return runner(a, rest)
    return orchestrate(a)


def orchestrate(a) -> int:
    work = Path(a.work).expanduser() / ("tiny" if a.tiny else "sd15")
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    timeout = a.timeout
    only = [item.strip() for item in a.only.split(",") if item.strip()]
    began = time.perf_counter()
    load_before = os.getloadavg()

    # the random checkpoint, made once
    marker = work / "prepared.json"
    if a.rebuild and work.exists():
        shutil.rmtree(work)
        work.mkdir(parents=True)
    if not marker.exists():
        print(f"making the random {'tiny' if a.tiny else 'SD 1.5'} checkpoint in {work} ...", flush=True)
        record = spawn(sys.executable, "prepare", ["--work-dir", str(work)] + (["--tiny"] if a.tiny else []), env, timeout, log=work / "prepare.log")
        if "error" in record:
            print(f"could not make the checkpoint ({reason_of(record)}); see {work / 'prepare.log'}")
            return 1
        prepared = {k: record[k] for k in ("model", "diffusers", "taesd", "tiny")} | {"seconds": record["wall_s"], "rss_gib": record["rss_gib"]}
        marker.write_text(json.dumps(prepared, indent=1))
        print(f"  done in {record['wall_s']:.0f}s (peak RSS {record['rss_gib']:.1f} GiB)", flush=True)
    prepared = json.loads(marker.read_text())
    common = ["--model", prepared["model"], "--diffusers", prepared["diffusers"], "--size", str(a.size), "--threads", str(a.threads)] + (["--tiny"] if a.tiny else [])

    # which rows can run, and why not
    skipped: dict[str, str] = {}
    rows = [row for row in PEER_ROWS + EXTRA_ROWS if (row in PEER_ROWS and wanted(row, only)) or (row in EXTRA_ROWS and row in only)]
    scumble_known, scumble_skipped = scumble_rows(sys.executable, env)
    rows += [row for row in scumble_known if wanted(row, only)]
    skipped |= {row: why for row, why in scumble_skipped.items() if wanted(row, only)}
    pythons = {"diffusers": sys.executable, "scumble": sys.executable, "sdcpp": a.peers_python, "openvino": a.peers_python}
    versions = {}
    for engine in dict.fromkeys(row.split(":")[0] for row in rows):
        probe = spawn(pythons[engine], f"probe:{engine}", [], env, 300)
        if probe.get("ok"):
            versions[engine] = probe["versions"]
            continue
        why = probe.get("reason") or reason_of(probe)
        if engine in ("sdcpp", "openvino"):
            why += f" (in {pythons[engine]}; `pip install -e '.[peers]'`, or pass --peers-python)"
        for row in [row for row in rows if row.startswith(engine + ":")]:
            skipped[row] = why
        rows = [row for row in rows if not row.startswith(engine + ":")]
    if a.tiny:
        for row in [row for row in rows if row.startswith("sdcpp:")]:
            skipped[row] = "--tiny: stable-diffusion.cpp builds only the real architectures; try --size 64 --steps-pair 1 2 on the real checkpoint"
        rows = [row for row in rows if not row.startswith("sdcpp:")]

    # OpenVINO's IR, exported once from the diffusers folder
    ov_dir = work / "openvino"
    export_note = ""
    if any(row.startswith("openvino:") for row in rows) and not (ov_dir / "model_index.json").exists():
        print(f"exporting the checkpoint to OpenVINO IR in {ov_dir} ...", flush=True)
        record = spawn(a.peers_python, "export", ["--diffusers", prepared["diffusers"], "--openvino", str(ov_dir)], env, timeout, log=work / "export.log")
        if "error" in record:
            why = f"export failed: {reason_of(record)}"
            for row in [row for row in rows if row.startswith("openvino:")]:
                skipped[row] = why
            rows = [row for row in rows if not row.startswith("openvino:")]
            shutil.rmtree(ov_dir, ignore_errors=True)
        else:
            export_note = f"OpenVINO export (once, not in the table): {record['wall_s']:.0f}s, peak RSS {record['rss_gib']:.1f} GiB"
            print("  " + export_note, flush=True)

    machine_start = spawn(sys.executable, "machine", common, env, timeout)
    if "error" in machine_start:
        print(f"could not measure the machine: {reason_of(machine_start)}")
        return 1
    gflop = machine_start["gflop_per_step"]
    few, more = a.steps_pair
    warm_up_notes: list[str] = []
    print(f"rows: {', '.join(rows)}", flush=True)
    print(f"{a.repeat} repeat(s) of {len(rows)} rows at {few} and {more} steps, {a.size}x{a.size}, {a.threads} threads", flush=True)

    runs: dict[str, dict[int, list[dict]]] = {row: {few: [], more: []} for row in rows}
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    warm_ups = [(row, few, "warm-up") for row in rows if needs_warm_up(row)]
    plan = warm_ups + [(row, steps, repeat) for repeat in range(a.repeat) for row in rows for steps in (few, more)]
    for row, steps, repeat in plan:
        if row not in rows:
            continue  # it failed earlier
        engine, _, config = row.partition(":")
        out = out_dir / f"{engine}-{config}-{steps}.png"
        args = common + ["--steps", str(steps), "--out", str(out)]
        if engine == "openvino":
            args += ["--openvino", str(ov_dir)]
        if engine == "scumble":
            flags = next(extra for name, extra, _ in SCUMBLE_FLAGS if name == config)
            args += ["--", "txt2img", PROMPT, "--model", prepared["model"], "--negative-prompt", NEGATIVE, "--steps", str(steps),
                     "--cfg", str(CFG), "--sampler", "euler", "--width", str(a.size), "--height", str(a.size), "--seed", str(SEED),
                     "-o", str(out), "--overwrite"]
            args += ["--config", prepared["diffusers"]] if a.tiny else []
            args += [part.format(taesd=prepared["taesd"]) for part in flags]
        record = spawn(pythons[engine], row, args, env, timeout)
        if "error" in record:
            skipped[row] = f"failed at {steps} steps: {reason_of(record)}"
            print(f"  {row} {steps} steps: FAILED ({skipped[row]})", flush=True)
            for line in record.get("log", [])[-6:]:
                print(f"      | {line[:200]}", flush=True)
            rows.remove(row)
            continue
        if repeat == "warm-up":
            warm_up_notes.append(f"{row}: {record['wall_s']:.0f}s")
        else:
            runs[row][steps].append(record)
        where = "warm-up" if repeat == "warm-up" else f"{repeat + 1}/{a.repeat}"
        print(f"  [{where}] {row:<28} {steps:>3} steps: wall {record['wall_s']:7.1f}s  ready {record['ready_s']:6.1f}s  "
              f"gen {record['gen_s']:7.2f}s  decode {record['decode_s']:6.2f}s  RSS {record['rss_gib']:5.2f} GiB", flush=True)

    machine_end = spawn(sys.executable, "machine", common, env, timeout)
    peaks = {dtype: max(machine_start["matmul"][dtype], machine_end.get("matmul", {}).get(dtype, 0.0)) for dtype in ("fp32", "bf16")}
    summary = {}
    for row in rows:
        pairs = list(zip(runs[row][few], runs[row][more]))
        if not pairs:
            continue
        step = statistics.median((b["gen_s"] - f["gen_s"]) / (more - few) for f, b in pairs)
        last = runs[row][more]
        summary[row] = {
            "load_s": statistics.median(r["ready_s"] for r in last + runs[row][few]),
            "step_s": step,
            "decode_s": statistics.median(r["decode_s"] for r in last),
            "e2e_s": statistics.median(r["wall_s"] for r in last),
            "rss_gib": max(r["rss_gib"] for r in last + runs[row][few]),
            "info": last[-1].get("info", ""),
        }

    total = time.perf_counter() - began
    print()
    print(f"## Peers: SD 1.5 architecture, random weights, {a.size}x{a.size}, Euler, CFG {CFG:g} with a negative prompt" + (" (TINY model: a smoke test)" if a.tiny else ""))
    print()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {cpu_name() or platform.machine()}, {os.cpu_count()} CPUs, {a.threads} threads, "
          f"load average {load_before[0]:.2f} before and {os.getloadavg()[0]:.2f} after; median of {a.repeat}, rows interleaved; this run took {total / 60:.1f} min.")
    print(f"One CFG step = {gflop:,.1f} GFLOP (two UNet forwards). Large matmuls: fp32 {machine_start['matmul']['fp32']:.0f} / {machine_end.get('matmul', {}).get('fp32', float('nan')):.0f} GFLOP/s, "
          f"bf16 {machine_start['matmul']['bf16']:.0f} / {machine_end.get('matmul', {}).get('bf16', float('nan')):.0f} GFLOP/s (start / end of the run; the better is the peak).")
    for engine, names in versions.items():
        print(f"{engine}: " + ", ".join(f"{name} {value}" for name, value in names.items() if value))
    if export_note:
        print(export_note)
    if warm_up_notes:
        print("Unmeasured warm-up processes, run first so that on-disk caches (inductor's) are warm for every measured one: " + ", ".join(warm_up_notes))
    print()
    base = summary.get("diffusers:fp32", {}).get("step_s")
    print(f"| row | load s | per step s | vs diffusers fp32 | decode s | end-to-end s ({more} steps) | 20 steps s (est.) | peak RSS GiB | GFLOP/s | of fp32 mm | of bf16 mm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row, s in summary.items():
        rate = gflop / s["step_s"] if s["step_s"] > 0 else float("nan")  # a step time at or below 0 is noise on a tiny model
        ratio = f"{s['step_s'] / base:.2f}×" if base else "—"
        estimate = s["e2e_s"] + (20 - more) * s["step_s"]
        label = row + (f" ({s['info']})" if s["info"] else "")
        print(f"| {label} | {s['load_s']:.1f} | {s['step_s']:.2f} | {ratio} | {fmt(s['decode_s'], '.2f')} | {s['e2e_s']:.1f} | {estimate:.1f} | {s['rss_gib']:.2f} | "
              f"{fmt(rate, '.3g')} | {fmt(rate / peaks['fp32'], '.0%')} | {fmt(rate / peaks['bf16'], '.0%')} |")
    if skipped:
        print()
        print("Not run:")
        for row, why in skipped.items():
            print(f"- {row}: {why}")
    (work / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(
        {"args": {k: v for k, v in vars(a).items() if not k.startswith("_")}, "machine": [machine_start, machine_end], "runs": runs,
         "summary": summary, "skipped": skipped, "versions": versions}, indent=1, default=str))
    return 0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    sys.exit(main())
