"""Write a diffusers SD 1.x pipeline as an original (LDM/A1111-style) single-file checkpoint.

Test-only: it gives the single-file loader a real checkpoint to read without any download.
It inverts the key layout that diffusers' own single-file conversion reads.
"""

from __future__ import annotations

import re

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _swap(text: str, pairs) -> str:
    for new, old in pairs:
        text = text.replace(f".{new}.", f".{old}.")
    return text


def unet_to_ldm(state: dict, layers_per_block: int) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    top = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    per = layers_per_block + 1
    out = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            out[_swap(f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.0.{m[3]}", _RESNET).rstrip(".")] = value
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            out[f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.1.{m[3]}"] = value
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            out[f"input_blocks.{(int(m[1]) + 1) * per}.0.op.{m[2]}"] = value
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            out[_swap(f"middle_block.{2 * int(m[1])}.{m[2]}", _RESNET)] = value
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            out[f"middle_block.1.{m[1]}"] = value
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            out[_swap(f"output_blocks.{int(m[1]) * per + int(m[2])}.0.{m[3]}", _RESNET)] = value
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            out[f"output_blocks.{int(m[1]) * per + int(m[2])}.1.{m[3]}"] = value
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            block = int(m[1])
            has_attention = any(k.startswith(f"up_blocks.{block}.attentions.") for k in state)
            out[f"output_blocks.{block * per + layers_per_block}.{2 if has_attention else 1}.conv.{m[2]}"] = value
        else:
            raise KeyError(f"no LDM name for UNet key {key}")
    return {f"model.diffusion_model.{k}": v for k, v in out.items()}


def vae_to_ldm(state: dict, num_blocks: int) -> dict:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    out = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            name = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            name = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            name = f"decoder.up.{num_blocks - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            name = f"decoder.up.{num_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
            name = _swap(f"{m[1]}.mid.attn_1.{m[2]}", _VAE_ATTN)
            if value.ndim == 2:  # LDM keeps these as 1x1 convolutions
                value = value[:, :, None, None]
        else:
            raise KeyError(f"no LDM name for VAE key {key}")
        out[name.replace("conv_shortcut", "nin_shortcut")] = value
    return {f"first_stage_model.{k}": v for k, v in out.items()}


def pipeline_to_ldm(pipe) -> dict:
    state = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config.layers_per_block)
    state |= vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.down_block_types))
    for key, value in pipe.text_encoder.state_dict().items():  # transformers 5 drops the text_model. prefix
        state["cond_stage_model.transformer." + (key if key.startswith("text_model.") else "text_model." + key)] = value
    return {k: v.contiguous() for k, v in state.items()}


def controlnet_to_ldm(state: dict, layers_per_block: int) -> dict:
    """A diffusers ControlNet's state as the original ControlNet files hold it (`control_model.` prefix)."""
    own, shared = {}, {}
    for key, value in state.items():
        if m := re.match(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
            own[f"zero_convs.{m[1]}.0.{m[2]}"] = value
        elif m := re.match(r"controlnet_mid_block\.(.*)", key):
            own[f"middle_block_out.0.{m[1]}"] = value
        elif m := re.match(r"controlnet_cond_embedding\.conv_in\.(.*)", key):
            own[f"input_hint_block.0.{m[1]}"] = value
        elif m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.*)", key):
            own[f"input_hint_block.{2 * (int(m[1]) + 1)}.{m[2]}"] = value
        elif m := re.match(r"controlnet_cond_embedding\.conv_out\.(.*)", key):
            own[f"input_hint_block.14.{m[1]}"] = value
        else:
            shared[key] = value
    unet_part = {k.removeprefix("model.diffusion_model."): v for k, v in unet_to_ldm(shared, layers_per_block).items()}
    return {f"control_model.{k}": v.contiguous() for k, v in (unet_part | own).items()}
