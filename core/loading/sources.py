"""Where a model comes from: the built-in model, a diffusers folder, a single checkpoint file, or a hub id.

`resolve` only looks at names and files (cheap, no torch); `load` builds the diffusers pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, UsageError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
BUILTIN_MODELS = {"scumble-mini": PACKAGE_ROOT / "models" / "scumble-mini"}
DEFAULT_MODEL = "scumble-mini"
CONFIGS_ROOT = Path(__file__).resolve().parent / "configs"
SHIPPED_CONFIGS = ("sd15", "sd15-inpaint", "sd2-base", "sd2-v", "sdxl")
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # builtin | folder | single_file | hub
    location: str  # a path, or a hub id
    name: str  # what we call it in messages and metadata
    family: str = ""  # sd | sdxl, filled in when known before loading

    def describe(self) -> str:
        return {"builtin": "built-in model", "folder": "diffusers folder", "single_file": "checkpoint file", "hub": "hub model"}[self.kind] + f" {self.location}"


def resolve(model: str) -> ModelSource:
    if model in BUILTIN_MODELS:
        folder = BUILTIN_MODELS[model]
        if not (folder / "model_index.json").exists():
            raise ModelError(f"built-in model {model!r} is missing from this installation ({folder}); reinstall scumble")
        return ModelSource("builtin", str(folder), model, "sd")
    path = Path(model).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.exists():
            raise ModelError(f"--model {model}: the folder has no model_index.json, so it is not a diffusers model folder")
        return ModelSource("folder", str(path), path.resolve().name, family_from_index(index))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES or suffix in SAFE_SUFFIXES:
            return ModelSource("single_file", str(path), path.stem)
        raise ModelError(f"--model {model}: not a model file (expected .safetensors, or {', '.join(PICKLE_SUFFIXES)} with --allow-pickle)")
    if path.suffix.lower() in SAFE_SUFFIXES + PICKLE_SUFFIXES or model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1):
        raise ModelError(f"--model {model}: no such file or folder")
    if HUB_ID.match(model):
        return ModelSource("hub", model, model)
    raise ModelError(f"--model {model}: not a built-in model ({', '.join(BUILTIN_MODELS)}), a folder, a .safetensors file or a hub id")


def read_index(index: Path) -> dict:
    """A model folder's model_index.json, which must be a JSON object."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"{index}: unreadable model_index.json ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{index}: model_index.json must be a JSON object, not a {type(data).__name__}")
    return data


def family_from_index(index: Path) -> str:
    class_name = read_index(index).get("_class_name", "")
    return "sdxl" if isinstance(class_name, str) and "XL" in class_name else "sd"


def check_components(folder: Path) -> None:
    """Name the first component that model_index.json lists but the folder lacks."""
    index = read_index(folder / "model_index.json")
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or not value or value[0] is None:
            continue
        if not (folder / key).is_dir():
            raise ModelError(f"model folder {folder} is missing its {key!r} component (no {key}/ folder)")


# ---------------------------------------------------------------- single-file checkpoints


def checkpoint_keys(path: Path, allow_pickle: bool) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes, read without loading the weights where the format allows."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise UsageError(f"{path.name}: {suffix} checkpoints are pickle files, which can run code when loaded; convert it to .safetensors, or pass --allow-pickle if you trust it")
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for unsafe or corrupt pickles
            raise ModelError(f"{path.name}: refused or unreadable even as a weights-only pickle ({str(exc).splitlines()[0]})") from exc
        state = state.get("state_dict", state)
        return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        raise ModelError(f"{path.name}: not a readable safetensors file ({str(exc).splitlines()[0]})") from exc


def detect_config(keys: dict[str, tuple[int, ...]]) -> str:
    """Which shipped architecture config a checkpoint needs, from its tensor names and shapes."""
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    first_conv = keys.get("model.diffusion_model.input_blocks.0.0.weight")
    if first_conv is None:
        raise ModelError("the checkpoint has no Stable Diffusion UNet (model.diffusion_model.*): not an SD 1.x, 2.x or SDXL checkpoint")
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2-v"  # SD 2.x 768 checkpoints are v-prediction; pass --config sd2-base for the 512 epsilon ones
    return "sd15-inpaint" if first_conv[1] == 9 else "sd15"


def config_folder(config: str | None, keys: dict[str, tuple[int, ...]]) -> Path:
    if config is None:
        return CONFIGS_ROOT / detect_config(keys)
    if config in SHIPPED_CONFIGS:
        return CONFIGS_ROOT / config
    folder = Path(config).expanduser()
    if not (folder / "model_index.json").exists():
        raise UsageError(f"--config {config}: not one of {', '.join(SHIPPED_CONFIGS)} and not a diffusers folder with model_index.json")
    return folder


# ---------------------------------------------------------------- identity


def weights_hash(source: ModelSource) -> str:
    """A1111-style short hash: the first 10 hex digits of the sha256 of the main weights file."""
    if source.kind == "hub":
        return ""
    path = Path(source.location)
    if path.is_dir():
        candidates = sorted((path / "unet").glob("*.safetensors")) or sorted((path / "unet").glob("*.bin"))
        if not candidates:
            return ""
        path = candidates[0]
    return _cached_sha256(path)[:10]


def file_sha256(path: Path) -> str:
    """A weights file's full sha256, remembered by size and mtime (a ControlNet is hashed once, not every run)."""
    return _cached_sha256(path)


def _cached_sha256(path: Path) -> str:
    # Hashing a multi-gigabyte checkpoint takes seconds; remember it by size and mtime as A1111 does.
    cache_file = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scumble" / "hashes.json"
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    cache[key] = digest.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only cache only costs speed
    return cache[key]
