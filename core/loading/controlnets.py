"""ControlNets: found (a diffusers folder, a single file, a hub id), checked against the model, loaded once.

A single file's architecture is a shipped config (SD 1.5 or SDXL, told apart by its tensors) or
--controlnet-config; its weights may be in the original layout, which diffusers converts on loading.
Every ControlNet is checked against the model's UNet before its weights are read, so one made for
another architecture is one line, not a shape error halfway through the first step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, UsageError, first_line
from . import device as devices
from . import sources
from .loaders import cache_then_hub, dtype_kwarg, quiet_libraries

CONFIGS = {"sd15": sources.CONFIGS_ROOT / "controlnet-sd15", "sdxl": sources.CONFIGS_ROOT / "controlnet-sdxl"}
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin")
_HINT_KEYS = ("controlnet_cond_embedding.conv_in.weight", "input_hint_block.0.weight")  # the control image's encoder
_XL_FULL = "down_blocks.2.attentions.0.transformer_blocks.9.attn1.to_k.weight"  # the shipped SDXL config's tenth layer


@dataclass(frozen=True)
class ControlNetFile:
    """What the record says of one ControlNet, and what a replay finds it by."""

    spec: str  # as given to --controlnet
    location: str  # where a replay finds it again: an absolute path, or the hub id
    kind: str  # folder | single_file | hub
    name: str
    sha256: str  # of the weights file
    short: str  # A1111's model hash, as its ControlNet extension shows it: "name [short]"
    config: str | None  # single files: the architecture used


@dataclass
class ControlNets:
    """The run's ControlNets as diffusers takes them: one ControlNetModel, or a MultiControlNetModel of several."""

    module: object
    files: list[ControlNetFile]


def a1111_hash(path: Path) -> str:
    """A1111's (legacy) model hash, which its ControlNet extension prints: sha256 of 64 KiB at 1 MiB, 8 hex digits."""
    with open(path, "rb") as fh:
        fh.seek(0x100000)
        return hashlib.sha256(fh.read(0x10000)).hexdigest()[:8]


def load_all(specs: list[tuple[str, str | None]], unet_config: dict, family: str, runtime: devices.Runtime, allow_pickle: bool = False) -> ControlNets:
    """Each (MODEL, config) loaded once, even when named twice, on the run's device and dtype."""
    quiet_libraries()
    from diffusers import MultiControlNetModel

    loaded: dict[tuple[str, str | None], tuple[object, ControlNetFile]] = {}
    for spec, config in specs:
        if (spec, config) not in loaded:
            loaded[(spec, config)] = _load(spec, config, unet_config, family, runtime, allow_pickle)
    models = [loaded[key][0] for key in specs]
    module = models[0] if len(models) == 1 else MultiControlNetModel(models)
    module.to(runtime.device, runtime.dtype)
    if devices.wants_channels_last(runtime, unet_config):  # as the UNet it feeds
        import torch

        module.to(memory_format=torch.channels_last)
    return ControlNets(module, [loaded[key][1] for key in specs])


def _load(spec: str, config: str | None, unet_config: dict, family: str, runtime: devices.Runtime, allow_pickle: bool):
    label = f"--controlnet {spec}"
    path = Path(spec).expanduser()
    dtype = dtype_kwarg(runtime.dtype)
    try:
        if path.is_dir():
            model, weights = _from_folder(path, label, unet_config, family, dtype, allow_pickle)
            return model, _described(spec, "folder", path.resolve().name, weights, None)
        if path.is_file():
            model, used = _from_file(path, config, label, unet_config, family, dtype, allow_pickle)
            return model, _described(spec, "single_file", path.stem, path, used)
        if path.suffix or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
            raise ModelError(f"{label}: no such file or folder")
        model, weights = _from_hub(spec, label, unet_config, family, dtype)
        return model, _described(spec, "hub", spec, weights, None)
    except (ModelError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers raises anything from OSError to KeyError on a bad file
        raise ModelError(f"{label}: could not load it ({first_line(exc)})") from exc


def _described(spec: str, kind: str, name: str, weights: Path, config: str | None) -> ControlNetFile:
    location = spec if kind == "hub" else str(Path(spec).expanduser().resolve())
    return ControlNetFile(spec, location, kind, name, sources.file_sha256(weights), a1111_hash(weights), config)


def _read_config(file: Path, label: str) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"{label}: unreadable {file.name} ({first_line(exc)})") from None
    if not isinstance(data, dict) or data.get("_class_name") != "ControlNetModel":
        named = data.get("_class_name") if isinstance(data, dict) else None
        raise ModelError(f"{label}: {file} describes {named or 'no model'}, not a ControlNetModel")
    return data


def check_fits(config: dict, unet_config: dict, family: str, label: str) -> None:
    """A ControlNet adds its outputs to the UNet's blocks: the two must be the same architecture."""
    names = {"sdxl": "SDXL", "sd": "SD 1.x/2.x"}
    theirs = "sdxl" if config.get("addition_embed_type") == "text_time" else "sd"
    if theirs != family:
        raise ModelError(f"{label}: an {names[theirs]} ControlNet, but the model is {names[family]}; use a ControlNet made for the model's architecture")
    def listed(value):
        return list(value) if isinstance(value, (list, tuple)) else value

    mine, model = config.get("cross_attention_dim"), unet_config.get("cross_attention_dim")
    if listed(mine) != listed(model):
        raise ModelError(f"{label}: made for a model whose text conditioning is {mine} wide, and this model's is {model} (SD 1.x: 768, SD 2.x: 1024, SDXL: 2048)")
    mine, model = config.get("block_out_channels"), unet_config.get("block_out_channels")
    if listed(mine) != listed(model):
        raise ModelError(f"{label}: made for a UNet whose blocks are {listed(mine)} wide, and this model's are {listed(model)}")


def _weights_file(folder: Path, label: str, allow_pickle: bool) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            if name.endswith(".bin") and not allow_pickle:
                raise ModelError(f"{label}: its weights are a pickle file ({name}), which can run code when loaded; pass --allow-pickle if you trust it")
            return folder / name
    raise ModelError(f"{label}: no weights in {folder} (expected {WEIGHT_FILES[0]})")


def _from_folder(folder: Path, label: str, unet_config: dict, family: str, dtype: dict, allow_pickle: bool):
    from diffusers import ControlNetModel

    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{label}: the folder has no config.json, so it is not a diffusers ControlNet")
    check_fits(_read_config(config_file, label), unet_config, family, label)
    weights = _weights_file(folder, label, allow_pickle)
    variant = {"variant": "fp16"} if weights.name.endswith(".fp16.safetensors") else {}
    return ControlNetModel.from_pretrained(folder, local_files_only=True, use_safetensors=weights.suffix == ".safetensors", **variant, **dtype), weights


def detect_config(keys: dict[str, tuple[int, ...]], label: str) -> str:
    """sd15 or sdxl from a single file's tensor names and shapes (diffusers' layout or the original one)."""
    names = {k.removeprefix("control_model."): shape for k, shape in keys.items()}
    if not any(k in names for k in _HINT_KEYS):
        raise ModelError(f"{label}: not a ControlNet (it has no control-image encoder: no controlnet_cond_embedding or input_hint_block tensors)")
    if "add_embedding.linear_1.weight" in names or "label_emb.0.0.weight" in names:
        if _XL_FULL not in names:
            raise ModelError(f"{label}: an SDXL ControlNet of another size than the full one (a mid or small one?); pass --controlnet-config with a folder holding its config.json")
        return "sdxl"
    widths = {shape[1] for k, shape in names.items() if k.endswith("attn2.to_k.weight") and len(shape) == 2}
    if widths == {768}:
        return "sd15"
    found = "SD 2.x (1024-wide text)" if widths == {1024} else f"{sorted(widths) or 'no'}-wide text conditioning"
    raise ModelError(f"{label}: a ControlNet for {found}, for which scumble ships no config; pass --controlnet-config with a folder holding its config.json")


def _config_folder(config: str | None, keys: dict, label: str) -> tuple[Path, str]:
    if config is None:
        name = detect_config(keys, label)
        return CONFIGS[name], name
    if config in CONFIGS:
        return CONFIGS[config], config
    folder = Path(config).expanduser()
    if not (folder / "config.json").is_file():
        raise UsageError(f"--controlnet-config {config}: not one of {', '.join(CONFIGS)} and not a folder with a ControlNet's config.json")
    return folder, str(folder.resolve())


def _from_file(path: Path, config: str | None, label: str, unet_config: dict, family: str, dtype: dict, allow_pickle: bool):
    from diffusers import ControlNetModel

    suffix = path.suffix.lower()
    if suffix not in sources.SAFE_SUFFIXES + sources.PICKLE_SUFFIXES:
        raise ModelError(f"{label}: not a model file (expected .safetensors, or {', '.join(sources.PICKLE_SUFFIXES)} with --allow-pickle)")
    keys = sources.checkpoint_keys(path, allow_pickle)  # refuses a pickle without --allow-pickle
    folder, used = _config_folder(config, keys, label)
    check_fits(_read_config(folder / "config.json", label), unet_config, family, label)
    checkpoint = str(path) if suffix in sources.SAFE_SUFFIXES else _pickled_state(path)
    model = ControlNetModel.from_single_file(checkpoint, config=str(folder), local_files_only=True, **dtype)
    if any(p.device.type == "meta" for p in model.parameters()):  # tensors the file lacks stay unloaded
        raise ModelError(f"{label}: its tensors do not fill the {used} architecture; pass --controlnet-config with the folder of its own config.json")
    return model, used


def _pickled_state(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return state.get("state_dict", state)


def _from_hub(repo: str, label: str, unet_config: dict, family: str, dtype: dict):
    from diffusers import ControlNetModel
    from huggingface_hub import hf_hub_download

    def load(local_only: bool):
        config_file = Path(hf_hub_download(repo, "config.json", local_files_only=local_only))
        check_fits(_read_config(config_file, label), unet_config, family, label)
        model = ControlNetModel.from_pretrained(repo, local_files_only=local_only, use_safetensors=True, **dtype)
        weights = Path(hf_hub_download(repo, WEIGHT_FILES[0], local_files_only=True))
        return model, weights

    return cache_then_hub(load, f"{label}: could not load this hub id")
