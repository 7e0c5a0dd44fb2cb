"""The trained LoRA as A1111, ComfyUI and diffusers read it: kohya's key layout in a .safetensors file.

peft names a layer `down_blocks.0...to_q.lora_A.weight`; kohya (and so A1111 and ComfyUI) name it
`lora_unet_down_blocks_0_..._to_q.lora_down.weight`, with an `.alpha` beside it. diffusers converts
one into the other; its converter writes SDXL's `lora_te1_` for the first text encoder, which SD 1.x
and 2.x tools know as `lora_te_`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import torch

# kohya's LoRA: every linear layer of the UNet's transformer blocks (attention, feed-forward, the 1x1 projections)
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
CONV_TARGETS = ["conv1", "conv2"]  # kohya's conv_dim (LoRA-C3Lier): the 3x3 convolutions of the ResNet blocks
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def kohya_tensors(unet, text_encoder) -> dict[str, torch.Tensor]:
    """The adapters of the UNet (and the text encoder, when it was trained) under kohya's names."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from peft import get_peft_model_state_dict

    state = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    if text_encoder is not None:
        # transformers 5 dropped CLIPTextModel's `text_model.` level; kohya's names (and A1111's) keep it
        state |= {f"text_encoder.{k if k.startswith('text_model.') else 'text_model.' + k}": v for k, v in get_peft_model_state_dict(text_encoder).items()}
    out = {}
    for key, value in convert_state_dict_to_kohya(state).items():
        key = "lora_te_" + key[len("lora_te1_") :] if key.startswith("lora_te1_") else key
        if key.endswith(".alpha"):
            value = value.float()  # alpha is each layer's rank (scale 1); diffusers writes it as an integer, kohya as a float
        out[key] = value.detach().to("cpu", torch.float32).contiguous()
    return out


def tensor_hash(data: bytes) -> str:
    """A1111's and kohya's `sshs_model_hash`: sha256 of the tensor bytes after the header, so metadata can carry it."""
    (length,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + length :]).hexdigest()


def encode(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The file's bytes; the header also carries the hash of its own tensors (which do not change with it)."""
    from safetensors.torch import save

    first = save(tensors, metadata=metadata)
    return save(tensors, metadata=metadata | {"sshs_model_hash": tensor_hash(first)})


def metadata(*, settings: dict, model_name: str, model_hash: str, v2: bool, resolution: int, images: int, captions_sha256: str, tag_frequency: dict, output_name: str, version: str) -> dict[str, str]:
    """kohya's ss_ fields (shown by A1111's LoRA tab and read by ComfyUI's tools), and scumble's own."""
    trigger = settings.get("trigger", "")
    lr = settings["lr"]
    ss = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": settings["rank"],
        "ss_network_alpha": settings["rank"],
        "ss_network_args": json.dumps({"conv_dim": settings["conv_rank"], "conv_alpha": settings["conv_rank"]} if settings["conv_rank"] else {}),
        "ss_base_model_version": "sd_v2" if v2 else "sd_v1",
        "ss_v2": v2,
        "ss_sd_model_name": model_name,
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_seed": settings["seed"],
        "ss_max_train_steps": settings["steps"],
        "ss_steps": settings["steps"],
        "ss_learning_rate": lr,
        "ss_unet_lr": lr,
        "ss_text_encoder_lr": lr if settings["train_text_encoder"] else 0,
        "ss_network_train_unet_only": not settings["train_text_encoder"],
        "ss_batch_size_per_device": settings["batch_size"],
        "ss_num_train_images": images,
        "ss_flip_aug": settings["flip"],
        "ss_random_crop": settings["crop"],
        "ss_prior_loss_weight": settings["prior_weight"] if settings["class_prompts"] else 0,
        "ss_min_snr_gamma": settings["min_snr_gamma"],
        "ss_tag_frequency": json.dumps(tag_frequency, ensure_ascii=False),
        "ss_output_name": output_name,
        "ss_training_comment": f"trigger: {trigger}" if trigger else "",
        "modelspec.trigger_phrase": trigger,
    }
    own = {
        "scumble_version": version,
        "scumble_base_model": model_name,
        "scumble_base_model_hash": model_hash,
        "scumble_trigger": trigger,
        "scumble_steps": settings["steps"],
        "scumble_rank": settings["rank"],
        "scumble_resolution": resolution,
        "scumble_seed": settings["seed"],
        "scumble_captions_sha256": captions_sha256,
        "scumble_settings": json.dumps(settings, sort_keys=True, ensure_ascii=False),
    }
    return {k: _text(v) for k, v in (ss | own).items()}


def _text(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def write(path: Path, data: bytes, overwrite: bool) -> None:
    """Atomically (temp file, then rename), never over an existing file unless asked."""
    from ...core.records.output import write_bytes

    write_bytes(data, path, overwrite=overwrite)
