"""Device and dtype policy: the one place that decides where and in what precision models run."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OFFLOAD_MODES = ("none", "model", "sequential")
BACKENDS = ("auto", "torch", "openvino")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    offload: str = "none"
    vae_tiling: bool = False
    attention_slicing: bool = False
    channels_last: bool = False  # --channels-last; wants_channels_last adds the policy, which needs the model
    compile: bool = False
    backend: str = "torch"  # "openvino": the UNet runs in OpenVINO (sampling/openvino_unet.py); "auto": the engine decides once the UNet is loaded

    @property
    def dtype_name(self) -> str:
        return next(k for k, v in DTYPES.items() if v == self.dtype)


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise UsageError(f"--device: unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():  # one process per GPU under accelerate/torchrun: each takes its own
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available on this machine (try --device auto)")
    if name == "mps" and not _mps_available():
        raise UsageError("--device mps: Apple's MPS backend is not available on this machine (try --device auto)")
    return torch.device(name)


# Measured in benchmarks/bench_precision.py and bench_adherence.py (benchmarks/README.md): on a CPU with
# fast bf16, bf16 halves an SD 1.5 CFG step, speeds the built-in model up by 10%, and keeps its
# adherence within 1 point of fp32 on every measure.
CPU_AUTO_BF16 = True


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 beats fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's own cpuinfo probes; private, so guarded
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16  # what diffusers documents for GPUs: half the memory, tensor cores
        return torch.bfloat16 if CPU_AUTO_BF16 and bf16_supported() else torch.float32
    if name not in DTYPES:
        raise UsageError(f"--dtype: unknown dtype {name!r}; choose from auto, {', '.join(DTYPES)}")
    if name == "fp16" and device.type == "cpu":
        raise UsageError("--dtype fp16: half precision is not supported on the CPU; use bf16 or fp32")
    return DTYPES[name]


# Measured on SD 1.5 at 512x512 (benchmarks/README.md, "Loading and decoding"): on the CPU in bf16,
# channels-last makes the VAE decode 0.72-0.77x and a UNet CFG step 0.87-0.88x of contiguous bf16, and
# lowers the decode's peak memory; oneDNN's bf16 convolutions work in NHWC and reorder NCHW tensors at every call. fp32 is left
# as diffusers runs it, so `--dtype fp32` stays pixel-identical to a bare diffusers script. On small latents it loses:
# the built-in model (16x16 latents, 2 channels to a norm group) took 1.07x the time a picture channels-last, as
# torch's channels-last bf16 group_norm is 10-20x slower than contiguous below about 32x32 (benchmarks/README.md).
CPU_BF16_CHANNELS_LAST = True
CHANNELS_LAST_MIN_LATENT = 64  # a model's native latent side (its UNet's sample_size): SD 1.x and 2.x are 64, SDXL 128


def wants_channels_last(runtime: Runtime, unet_config) -> bool:
    """Whether a model's networks run channels-last: asked for, or bf16 on the CPU for a model of SD's size or larger."""
    side = unet_config.get("sample_size") or 0
    side = min(side) if isinstance(side, (list, tuple)) else side
    policy = CPU_BF16_CHANNELS_LAST and runtime.device.type == "cpu" and runtime.dtype == torch.bfloat16 and side >= CHANNELS_LAST_MIN_LATENT
    return runtime.channels_last or policy


def make_runtime(device: str = "auto", dtype: str = "auto", offload: str = "none", vae_tiling: bool = False, attention_slicing: bool = False, channels_last: bool = False, compile: bool = False, backend: str = "auto") -> Runtime:
    dev = resolve_device(device)
    if backend not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend != "torch":
        import importlib.util

        installed = importlib.util.find_spec("openvino") is not None
        if backend == "auto" and (dev.type != "cpu" or compile or not installed):
            backend = "torch"  # auto gives way to what OpenVINO cannot do; an asked-for openvino is refused below
        elif backend == "openvino" and dev.type != "cpu":
            raise UsageError(f"--backend openvino runs on the CPU; it cannot use --device {dev.type}")
        elif backend == "openvino" and compile:
            raise UsageError("--backend openvino and --compile: choose one (OpenVINO compiles the UNet itself)")
        elif backend == "openvino" and not installed:
            raise UsageError("--backend openvino needs OpenVINO: pip install 'scumble[openvino]'")
    if offload not in OFFLOAD_MODES:
        raise UsageError(f"--offload: unknown mode {offload!r}; choose from {', '.join(OFFLOAD_MODES)}")
    if offload != "none" and dev.type != "cuda":
        raise UsageError(f"--offload {offload}: offloading moves weights between CPU and a CUDA GPU; it needs --device cuda")
    precision = resolve_dtype(dtype, dev)
    return Runtime(dev, precision, offload, vae_tiling, attention_slicing, channels_last, compile, backend)


def place(pipe, runtime: Runtime):
    """Put a loaded pipeline on its device with the memory savers diffusers documents for small GPUs."""
    if runtime.offload == "model":
        pipe.enable_model_cpu_offload()
    elif runtime.offload == "sequential":
        pipe.enable_sequential_cpu_offload()
    else:
        pipe.to(runtime.device)
    if runtime.vae_tiling:
        pipe.vae.enable_tiling()
    if runtime.attention_slicing:
        pipe.enable_attention_slicing()
    if wants_channels_last(runtime, pipe.unet.config):
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if runtime.compile:
        # Compiled for the first size it sees; a new size recompiles (slow once), which the engine warns about.
        pipe.unet = torch.compile(pipe.unet)
    return pipe


def generator(seed: int) -> torch.Generator:
    # Noise is always drawn on the CPU so a seed gives the same starting latents on every device.
    return torch.Generator(device="cpu").manual_seed(seed)
