"""Loading a model: the pipeline from any source, another autoencoder, cache first and then the hub.

diffusers and transformers raise anything from OSError to KeyError on a bad folder; every failure
here becomes one ModelError naming what was tried.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch

from ..errors import ModelError, UsageError, first_line
from . import device as devices
from . import sources
from .sources import ModelSource


def quiet_libraries() -> None:
    """Our own progress bar and one-line errors replace the libraries' load bars, warnings and notices."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(diffusers|transformers)\.")
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks")  # diffusers still passes a retired hub argument
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def dtype_kwarg(dtype: torch.dtype) -> dict:
    """diffusers 0.42 renamed `torch_dtype` to `dtype`; older releases know only the old name."""
    import diffusers
    from packaging.version import Version

    return {"dtype": dtype} if Version(diffusers.__version__) >= Version("0.42") else {"torch_dtype": dtype}


def _load_failure(source: ModelSource, exc: Exception) -> ModelError:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ModelError(f"could not load {source.describe()}: {first}")


def load_pipeline(source: ModelSource, runtime: devices.Runtime, config: str | None = None, allow_pickle: bool = False):
    """Build the txt2img pipeline for `source`, offline unless the source is a hub id not yet cached."""
    quiet_libraries()
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    dtype = dtype_kwarg(runtime.dtype)
    try:
        if source.kind in ("builtin", "folder"):
            sources.check_components(Path(source.location))
            return _from_pretrained(source.location, source.family, dtype, local_only=True)
        if source.kind == "single_file":
            path = Path(source.location)
            keys = sources.checkpoint_keys(path, allow_pickle)
            folder = sources.config_folder(config, keys)
            xl = "XL" in json.loads((folder / "model_index.json").read_text()).get("_class_name", "")
            cls = StableDiffusionXLPipeline if xl else StableDiffusionPipeline
            extra = {} if xl else {"safety_checker": None, "requires_safety_checker": False}
            extra |= _converted_components(path, folder, runtime.dtype)
            return cls.from_single_file(str(path), config=str(folder), local_files_only=True, **dtype, **extra)
        return _load_hub(source, dtype)
    except (ModelError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers/transformers raise anything from OSError to KeyError on bad folders
        raise _load_failure(source, exc) from exc


# The original layout's prefixes of the two large components, as diffusers' own converter reads them.
_CONVERTED_COMPONENTS = {"unet": ("model.diffusion_model.",), "vae": ("first_stage_model.", "vae.")}
_SAFETENSORS_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
MAPPED_BYTES = 256 << 20  # measured on SD 1.5: a mapping per tensor (934 of them) took 4-5 s, batches of 256 MiB under 1 s


def _converted_components(path: Path, folder: Path, dtype: torch.dtype) -> dict:
    """The UNet and VAE of a .safetensors file whose weights must change dtype, converted as they are read.

    diffusers' from_single_file maps the whole file and keeps every tensor of it alive until the last
    component is built, so converting (an fp32 file run in bf16) held the file's pages and the copy at
    once: 6.4 GiB for SD 1.5 in bf16 (benchmarks/bench_load.py). Here the models are built from a state
    dict already in the run's dtype (diffusers' documented dict input), read by `read_converted`. The
    text encoders, a small part, stay with diffusers. Files already in the run's dtype (used in place,
    no copy) and pickles load as before.
    """
    if path.suffix.lower() != ".safetensors":
        return {}
    from safetensors import safe_open

    index = sources.read_index(folder / "model_index.json")
    wanted = {name: _single_file_class(index.get(name)) for name in _CONVERTED_COMPONENTS}
    wanted = {name: cls for name, cls in wanted.items() if cls is not None}
    prefixes = tuple(p for name in wanted for p in _CONVERTED_COMPONENTS[name])
    with safe_open(str(path), framework="pt") as f:
        keys = [k for k in f.keys() if k.startswith(prefixes)]
        formats = {f.get_slice(k).get_dtype() for k in keys} & set(_SAFETENSORS_DTYPES.values())
    if not keys or formats <= {_SAFETENSORS_DTYPES[dtype]}:
        return {}
    state = read_converted(path, keys, dtype)
    return {name: cls.from_single_file(state, config=str(folder), subfolder=name, local_files_only=True, **dtype_kwarg(dtype)) for name, cls in wanted.items()}


def read_converted(path: Path, keys: list[str], dtype: torch.dtype) -> dict:
    """Tensors of a .safetensors file, floating-point ones in `dtype`, with at most MAPPED_BYTES of the file mapped at a time.

    A mapping's pages count as the process's memory until it is closed, so the file is read in batches,
    each through its own mapping, and every tensor is copied off it.
    """
    from safetensors import safe_open

    state, done = {}, 0
    while done < len(keys):
        with safe_open(str(path), framework="pt") as f:
            mapped = 0
            while done < len(keys) and mapped < MAPPED_BYTES:
                tensor = f.get_tensor(keys[done])
                mapped += tensor.numel() * tensor.element_size()
                # copied even where the dtype stays: a tensor left on the mapping would keep all of it open
                state[keys[done]] = tensor.to(dtype if tensor.is_floating_point() else tensor.dtype, copy=True)
                done += 1
            del tensor
    return state


def _single_file_class(entry):
    """The diffusers class a model_index.json entry names, when it loads from an original-layout state dict."""
    import diffusers

    if not (isinstance(entry, list) and len(entry) == 2 and entry[0] == "diffusers" and isinstance(entry[1], str)):
        return None
    cls = getattr(diffusers, entry[1], None)
    return cls if isinstance(cls, type) and issubclass(cls, diffusers.loaders.FromOriginalModelMixin) else None


def _from_pretrained(location: str, family: str, dtype: dict, local_only: bool):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if family == "sdxl":
        return StableDiffusionXLPipeline.from_pretrained(location, **dtype, local_files_only=local_only)
    return StableDiffusionPipeline.from_pretrained(location, **dtype, local_files_only=local_only, safety_checker=None, requires_safety_checker=False)


def _load_hub(source: ModelSource, dtype: dict):
    from huggingface_hub import hf_hub_download

    def load(local_only: bool):
        index = hf_hub_download(source.location, "model_index.json", local_files_only=local_only)
        return _from_pretrained(source.location, sources.family_from_index(Path(index)), dtype, local_only)

    return cache_then_hub(load, f"--model {source.location}: could not load this hub id")


def cache_then_hub(load: Callable[[bool], object], failure: str):
    """`load(local_only)` from the local cache first, then (unless HF_HUB_OFFLINE) the hub; else one line naming all that was tried."""
    tried = []
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    for local_only in (True, False):
        if not local_only and offline:
            tried.append("no download (HF_HUB_OFFLINE is set)")
            break
        try:
            return load(local_only)
        except (ModelError, UsageError):
            raise
        except Exception as exc:  # noqa: BLE001 - hub and file errors come in many types
            tried.append(("the local cache" if local_only else "downloading") + f" ({first_line(exc, 160)})")
    raise ModelError(f"{failure}; tried " + "; ".join(tried))


TINY_AUTOENCODERS = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}  # the AutoencoderTiny diffusers documents per family
TINY_FOLDER = "vae_tiny"  # a model folder may carry its own tiny autoencoder beside its components


def autoencoder_class(config_file: Path):
    """AutoencoderTiny (TAESD's layout) or AutoencoderKL, as the component's config.json names it."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    return AutoencoderTiny if json.loads(config_file.read_text()).get("_class_name") == "AutoencoderTiny" else AutoencoderKL


def load_vae(spec: str, source: ModelSource, family: str, runtime: devices.Runtime):
    """The autoencoder --vae names: 'tiny' (the model's own, else TAESD for its family), a folder, or a hub id."""
    quiet_libraries()
    from huggingface_hub import hf_hub_download

    dtype = dtype_kwarg(runtime.dtype)
    location = spec
    if spec == "tiny":
        own = Path(source.location) / TINY_FOLDER if source.kind in ("builtin", "folder") else None
        location = str(own) if own is not None and own.is_dir() else TINY_AUTOENCODERS[family]
    folder = Path(location).expanduser()
    try:
        if folder.is_dir():
            config_file = folder / "config.json"
            if not config_file.is_file():
                raise ModelError(f"--vae {spec}: {folder} has no config.json (expected a diffusers AutoencoderKL or AutoencoderTiny folder)")
            return autoencoder_class(config_file).from_pretrained(folder, local_files_only=True, **dtype)
        if folder.suffix or location.startswith((".", "/", "~")) or location.count("/") != 1:
            raise ModelError(f"--vae {spec}: no such folder")

        def load(local_only: bool):
            config = hf_hub_download(location, "config.json", local_files_only=local_only)
            return autoencoder_class(Path(config)).from_pretrained(location, local_files_only=local_only, **dtype)

        return cache_then_hub(load, f"--vae {spec}: could not load {location}")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"--vae {spec}: could not load {location}: {first_line(exc, 160)}") from exc
