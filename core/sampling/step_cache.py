"""Step caching in the style of DeepCache (Ma et al., 2023): reuse the UNet's deep features between steps.

Adjacent denoising steps change the UNet's deep, low-resolution features very little. Every
`every`-th UNet call runs the whole network and keeps the input of its last up block; the calls
in between run only the shallow path (the time embedding, `conv_in`, the first down block, the
last up block and the output head) against that kept feature, which skips the mid block and
every other down and up block: most of the network's work.

The schedule counts UNet calls within one sampling call, not timesteps: Heun and DPM2 evaluate
the UNet twice per step at repeated timesteps, so a timestep's index would name two calls. The
engine restarts the count before each pipeline call, so img2img, inpaint and each animation
frame start with a full pass.
"""

from __future__ import annotations

import torch
from diffusers.utils.peft_utils import apply_lora_scale

from ..errors import UsageError

# --step-cache 0 (the default) caches only sampling calls of at least this many steps. On the built-in
# model's adherence (bench_flags.py, 100 prompts) it cost 1 point at 20 steps, 3 at 15, 23 at 10 and 55 at
# 6; img2img running 3-4 steps (animate at Deforum's strengths) flickered 3 to 9 times as much.
AUTO_MIN_STEPS = 20


def interval(setting: int, steps_run: int) -> int:
    """The step cache a sampling call of `steps_run` steps uses: the setting, or for 0 (auto) 2 when enough steps run."""
    if setting:
        return setting
    return 2 if steps_run >= AUTO_MIN_STEPS else 1


class StepCache:
    """Installed once on a UNet; `start(every)` before each sampling call (1: every call runs in full)."""

    def __init__(self, unet):
        self.unet = unet
        self.every = 1
        self.calls = 0
        self.full_calls = 0  # how many calls ran the whole network (read by tests and the benchmark)
        self._deep: torch.Tensor | None = None
        self._forward = unet.forward
        unet.up_blocks[-1].register_forward_pre_hook(self._keep, with_kwargs=True)
        unet.forward = self._call

    @staticmethod
    def check(unet) -> None:
        """Refuse a UNet whose shallow path is not the one this cache knows (raised before any step runs)."""
        first_outputs = 1 + len(unet.down_blocks[0].resnets) + (1 if unet.down_blocks[0].downsamplers else 0)
        if not hasattr(unet, "get_time_embed") or len(unet.up_blocks[-1].resnets) > first_outputs:
            raise UsageError(f"--step-cache: this model's UNet ({type(unet).__name__}) has no shallow path to cache around; use --step-cache 1")

    def start(self, every: int) -> None:
        self.every, self.calls, self.full_calls, self._deep = every, 0, 0, None

    def _keep(self, _module, args, kwargs):
        if self.every > 1:
            self._deep = up_block_input(args, kwargs)

    def _call(self, sample, timestep, encoder_hidden_states, **kwargs):
        index, self.calls = self.calls, self.calls + 1
        deep = reused_feature(self.every, index, self._deep, sample.shape[0])
        if deep is None or kwargs.get("down_intrablock_additional_residuals") is not None:
            self.full_calls += 1
            return self._forward(sample, timestep, encoder_hidden_states, **kwargs)
        return shallow_forward(self.unet, deep, sample, timestep, encoder_hidden_states, **kwargs)


def up_block_input(args, kwargs):
    """The hidden states a forward pre-hook on the last up block sees: the deep feature a step cache keeps."""
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def reused_feature(every: int, index: int, deep, batch: int):
    """The kept deep feature UNet call `index` reuses (the shallow path), or None when the call runs whole."""
    if deep is not None and deep.shape[0] == 2 * batch:
        deep = deep.chunk(2)[-1]  # --cfg-cutoff dropped the unconditional half: keep the conditional one
    shallow = every > 1 and index % every != 0 and deep is not None and deep.shape[0] == batch
    return deep if shallow else None


@apply_lora_scale("cross_attention_kwargs")  # a LoRA scale passed to the UNet acts on the shallow path as on the full one
def shallow_forward(unet, deep, sample, timestep, encoder_hidden_states, timestep_cond=None, class_labels=None, added_cond_kwargs=None, cross_attention_kwargs=None, attention_mask=None, encoder_attention_mask=None, down_block_additional_residuals=None, mid_block_additional_residual=None, return_dict=True, **_unused):
    """The UNet's output with its deep part replaced by `deep` (the kept input of the last up block).

    The steps mirror UNet2DConditionModel.forward through diffusers' own helpers for the embeddings;
    only the blocks between the first down block and the last up block are left out.
    """
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    if unet.config.center_input_sample:
        sample = 2 * sample - 1.0
    emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), timestep_cond)
    class_emb = unet.get_class_embed(sample=sample, class_labels=class_labels)
    if class_emb is not None:
        emb = torch.cat([emb, class_emb], dim=-1) if unet.config.class_embeddings_concat else emb + class_emb
    aug_emb = unet.get_aug_embed(emb=emb, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs)
    emb = emb + aug_emb if aug_emb is not None else emb
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    encoder_hidden_states = unet.process_encoder_hidden_states(encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs)
    if attention_mask is not None:
        attention_mask = ((1 - attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
    if encoder_attention_mask is not None:
        encoder_attention_mask = ((1 - encoder_attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
    attention = {"encoder_hidden_states": encoder_hidden_states, "attention_mask": attention_mask, "cross_attention_kwargs": cross_attention_kwargs, "encoder_attention_mask": encoder_attention_mask}

    sample = unet.conv_in(sample)
    first = unet.down_blocks[0]
    if getattr(first, "has_cross_attention", False):
        _, res_samples = first(hidden_states=sample, temb=emb, **attention)
    else:
        _, res_samples = first(hidden_states=sample, temb=emb)
    last = unet.up_blocks[-1]
    skips = ((sample,) + tuple(res_samples))[: len(last.resnets)]  # the full pass hands the last up block these same ones
    if down_block_additional_residuals is not None:  # a ControlNet's residuals for the blocks that ran
        skips = tuple(s + r for s, r in zip(skips, down_block_additional_residuals))
    if getattr(last, "has_cross_attention", False):
        sample = last(hidden_states=deep, temb=emb, res_hidden_states_tuple=skips, **attention)
    else:
        sample = last(hidden_states=deep, temb=emb, res_hidden_states_tuple=skips)
    if unet.conv_norm_out:
        sample = unet.conv_act(unet.conv_norm_out(sample))
    sample = unet.conv_out(sample)
    return UNet2DConditionOutput(sample=sample) if return_dict else (sample,)
