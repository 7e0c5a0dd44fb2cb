"""Token merging for Stable Diffusion (Bolya and Hoffman, 2023): self-attention on fewer tokens.

At the UNet's highest-resolution attention level, self-attention costs grow with the square of the
token count and dominate large images. Before each such self-attention, `ratio` of the tokens are
merged (averaged) into their most similar partner; attention runs on what is left, and every
merged token then takes its partner's output. Partners are one token per 2x2 cell ("destinations");
the rest ("sources") each pick the destination they are most alike in cosine similarity, and the
most alike pairs merge first.

The `tomesd` package implements this by replacing diffusers' transformer block class with a copy
of its forward from 2023, which reads attributes diffusers has since removed; here only the
self-attention module is wrapped, which is the part of the block the method changes (its default,
merging for self-attention only). Which destination each cell offers is drawn from a generator
seeded by the UNet call's index, so a seed gives the same picture on every run.
"""

from __future__ import annotations

import math

import torch


class TokenMerging:
    """Installed once on a UNet; `start(ratio)` before each sampling call (0: off, the plain forward)."""

    def __init__(self, unet):
        self.ratio = 0.0
        self.calls = 0
        self._latent: tuple[int, int] | None = None
        self.wrapped = top_level_self_attentions(unet)
        unet.register_forward_pre_hook(self._see_latent, with_kwargs=True)
        for attention in self.wrapped:
            attention.forward = self._wrap(attention.forward)

    def start(self, ratio: float) -> None:
        self.ratio, self.calls = ratio, 0

    def _see_latent(self, _module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self._latent = tuple(sample.shape[-2:])
        self.calls += 1

    def _wrap(self, forward):
        def merged_forward(hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
            if self.ratio <= 0 or encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3 or self._latent is None:
                return forward(hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask, **kwargs)
            merge, unmerge = bipartite_merge(hidden_states, self._latent, self.ratio, self.calls)
            return unmerge(forward(merge(hidden_states), **kwargs))

        return merged_forward


def top_level_self_attentions(unet) -> list:
    """The self-attention (attn1) modules of the UNet's highest-resolution attention level, down and up."""
    levels = []
    for depth, block in enumerate(unet.down_blocks):
        if getattr(block, "attentions", None):
            levels.append(depth)
    if not levels:
        return []
    top = levels[0]
    blocks = [unet.down_blocks[top], unet.up_blocks[len(unet.up_blocks) - 1 - top]]
    return [module.attn1 for block in blocks for transformer in getattr(block, "attentions", []) for module in transformer.modules() if hasattr(module, "attn1") and module.attn1 is not None]


def bipartite_merge(x: torch.Tensor, latent: tuple[int, int], ratio: float, call: int, stride: int = 2):
    """(merge, unmerge) for tokens x (batch, n, channels) laid out on a grid that is `latent` scaled down."""
    batch, n, channels = x.shape
    scale = math.sqrt(latent[0] * latent[1] / n)
    h, w = round(latent[0] / scale), round(latent[1] / scale)
    if h * w != n or h < stride or w < stride:
        return (lambda t: t), (lambda t: t)
    gh, gw = h // stride, w // stride
    generator = torch.Generator().manual_seed(call)
    pick = torch.randint(stride * stride, (gh, gw), generator=generator)  # which token of each cell is its destination
    grid = torch.zeros(gh, gw, stride * stride, dtype=torch.bool)
    grid.scatter_(2, pick.unsqueeze(-1), True)
    is_dst = torch.zeros(h, w, dtype=torch.bool)
    is_dst[: gh * stride, : gw * stride] = grid.view(gh, gw, stride, stride).permute(0, 2, 1, 3).reshape(gh * stride, gw * stride)
    order = torch.argsort(is_dst.flatten().to(torch.int8), stable=True).to(x.device)  # sources first, then destinations
    n_dst = gh * gw
    n_src = n - n_dst
    r = min(int(n * ratio), n_src)
    if r <= 0:
        return (lambda t: t), (lambda t: t)

    with torch.no_grad():
        metric = x / x.norm(dim=-1, keepdim=True)
        metric = metric[:, order]
        scores = metric[:, :n_src] @ metric[:, n_src:].transpose(1, 2)
        best, best_dst = scores.max(dim=-1)
        ranked = best.argsort(dim=-1, descending=True)
        merged_src = ranked[:, :r]  # the sources most like a destination: merged into it
        kept_src = ranked[:, r:]
        into = best_dst.gather(1, merged_src)

    def merge(t: torch.Tensor) -> torch.Tensor:
        t = t[:, order]
        src, dst = t[:, :n_src], t[:, n_src:]
        kept = src.gather(1, kept_src.unsqueeze(-1).expand(-1, -1, channels))
        moving = src.gather(1, merged_src.unsqueeze(-1).expand(-1, -1, channels))
        dst = dst.scatter_reduce(1, into.unsqueeze(-1).expand(-1, -1, channels), moving, reduce="mean", include_self=True)
        return torch.cat([kept, dst], dim=1)

    def unmerge(t: torch.Tensor) -> torch.Tensor:
        c = t.shape[-1]
        kept, dst = t[:, : n_src - r], t[:, n_src - r :]
        src = torch.empty(batch, n_src, c, dtype=t.dtype, device=t.device)
        src.scatter_(1, kept_src.unsqueeze(-1).expand(-1, -1, c), kept)
        src.scatter_(1, merged_src.unsqueeze(-1).expand(-1, -1, c), dst.gather(1, into.unsqueeze(-1).expand(-1, -1, c)))
        out = torch.empty(batch, n, c, dtype=t.dtype, device=t.device)
        out[:, order] = torch.cat([src, dst], dim=1)
        return out

    return merge, unmerge
