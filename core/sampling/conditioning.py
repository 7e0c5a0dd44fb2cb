"""Prompts into CLIP embeddings the way A1111 builds them: 75-token chunks, weights, mean restored.

A prompt with no syntax gives exactly the token ids diffusers' own `encode_prompt` gives (BOS, tokens,
EOS, padded with the tokenizer's pad id to 77), so a plain prompt's pixels do not change. Weighted
tokens scale the chunk's embeddings, then the chunk is rescaled to its original mean. Longer prompts
are several chunks, encoded separately and concatenated on the token axis; SDXL's pooled embedding
comes from the first chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import prompts as syntax
from .settings import ImageJob

CHUNK = 75


@dataclass
class Tokens:
    ids: list[list[int]]  # chunks of 77 ids
    weights: list[list[float]]


def tokenize(tokenizer, text: str) -> Tokens:
    """Chunks of BOS + 75 tokens + EOS, padded; BREAK closes a chunk early."""
    chunks: list[tuple[list[int], list[float]]] = [([], [])]
    for run in syntax.weighted_runs(text):
        if run is syntax.BREAK:
            chunks.append(([], []))
            continue
        piece, weight = run
        for token in tokenizer(piece, add_special_tokens=False, truncation=False).input_ids:
            if len(chunks[-1][0]) == CHUNK:
                chunks.append(([], []))
            chunks[-1][0].append(token)
            chunks[-1][1].append(weight)
    if len(chunks) > 1 and not chunks[-1][0]:
        chunks.pop()
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    length = CHUNK + 2
    out = Tokens([], [])
    for ids, weights in chunks:
        row = [bos, *ids, eos]
        out.ids.append(row + [pad] * (length - len(row)))
        out.weights.append([1.0, *weights, 1.0] + [1.0] * (length - len(row)))
    return out


def _empty_chunk(tokenizer) -> tuple[list[int], list[float]]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return [tokenizer.bos_token_id, tokenizer.eos_token_id] + [pad] * CHUNK, [1.0] * (CHUNK + 2)


def encode(tokenizer, text_encoder, all_tokens: list[Tokens], chunks: int, clip_skip: int, xl: bool):
    """[N, 77*chunks, D] embeddings (and the pooled output of chunk 0 for a projection encoder)."""
    rows, weights = [], []
    for tokens in all_tokens:
        padded_ids, padded_weights = list(tokens.ids), list(tokens.weights)
        while len(padded_ids) < chunks:
            ids, w = _empty_chunk(tokenizer)
            padded_ids.append(ids)
            padded_weights.append(w)
        rows += padded_ids
        weights += padded_weights
    device = text_encoder.device
    ids = torch.tensor(rows, device=device)
    mask = None
    if getattr(text_encoder.config, "use_attention_mask", False):
        mask = (ids != (tokenizer.pad_token_id if tokenizer.pad_token_id is not None else -1)).long()
    output = text_encoder(ids, attention_mask=mask, output_hidden_states=True)
    if xl:  # SDXL reads the penultimate layer of both encoders, without the final layer norm
        z = output.hidden_states[-(clip_skip + 1)]
    elif clip_skip == 1:
        z = output[0]
    else:
        model = getattr(text_encoder, "text_model", text_encoder)  # transformers 5 flattened CLIPTextModel
        z = model.final_layer_norm(output.hidden_states[-clip_skip])
    z = z.to(dtype=text_encoder.dtype)
    w = torch.tensor(weights, dtype=z.dtype, device=z.device)
    weighted = (w != 1.0).any(dim=1)
    if weighted.any():  # A1111's "Original" emphasis: scale each token, then give each chunk back its mean
        before = z.float().mean(dim=(1, 2))
        scaled = z * w.unsqueeze(-1)
        after = scaled.float().mean(dim=(1, 2))
        rescaled = scaled * (before / after).to(z.dtype).view(-1, 1, 1)
        z = torch.where(weighted.view(-1, 1, 1), rescaled, z)
    n = len(all_tokens)
    embeds = z.reshape(n, chunks * z.shape[1], z.shape[2])
    pooled = None
    if hasattr(output, "text_embeds"):
        pooled = output.text_embeds.reshape(n, chunks, -1)[:, 0]
    return embeds, pooled


class PromptEncoder:
    """Encodes a batch's prompts (and their per-step schedules) for one pipeline."""

    def __init__(self, pipe, clip_skip: int = 1):
        self.pipe = pipe
        self.clip_skip = clip_skip
        self.xl = hasattr(pipe, "text_encoder_2") and pipe.text_encoder_2 is not None

    def _encoders(self):
        pipe = self.pipe
        if self.xl:
            pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]
            return [(t, e) for t, e in pairs if t is not None and e is not None]
        return [(pipe.tokenizer, pipe.text_encoder)]

    @torch.no_grad()
    def _tokenize(self, tokenizer, text: str) -> Tokens:
        if hasattr(self.pipe, "maybe_convert_prompt"):  # textual-inversion tokens that stand for several vectors
            text = self.pipe.maybe_convert_prompt(text, tokenizer)
        return tokenize(tokenizer, text)

    def embeds(self, texts: list[str], chunks: int | None = None):
        """(embeds, pooled, chunks) for texts already resolved for one step."""
        encoders = self._encoders()
        tokens = [[self._tokenize(tokenizer, text) for text in texts] for tokenizer, _ in encoders]
        chunks = chunks or max(len(t.ids) for per in tokens for t in per)
        outputs = [encode(tokenizer, encoder, per, chunks, self.clip_skip, self.xl) for (tokenizer, encoder), per in zip(encoders, tokens)]
        embeds = torch.cat([e for e, _ in outputs], dim=-1) if len(outputs) > 1 else outputs[0][0]
        pooled = outputs[-1][1] if self.xl else None
        return embeds, pooled, chunks

    def chunks_needed(self, texts: list[str]) -> int:
        return max(len(self._tokenize(tokenizer, text).ids) for tokenizer, _ in self._encoders() for text in texts)

    def for_step(self, schedules: list[list[tuple[int, str]]], negatives: list[list[tuple[int, str]]], index: int, chunks: int) -> dict:
        """The diffusers keyword arguments for step `index` (0-based) of every image in the batch."""
        positive, pooled, _ = self.embeds([syntax.text_at(s, index) for s in schedules], chunks)
        negative, negative_pooled, _ = self.embeds([syntax.text_at(s, index) for s in negatives], chunks)
        kwargs = {"prompt_embeds": positive, "negative_prompt_embeds": negative}
        if self.xl:
            kwargs |= {"pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": negative_pooled}
        return kwargs


class Conditioner:
    """A batch's prompts as embeddings, step by step: parsed once, re-encoded only where an edit or alternation changes the text."""

    def __init__(self, encoder: PromptEncoder, jobs: list[ImageJob], steps: int):
        self.encoder = encoder
        steps = max(steps, 1)
        self.positive = [syntax.schedule(syntax.extract_loras(j.prompt)[0], steps) for j in jobs]
        self.negative = [syntax.schedule(syntax.extract_loras(j.negative_prompt)[0], steps) for j in jobs]
        texts = {text for s in self.positive + self.negative for _, text in s}
        self.chunks = encoder.chunks_needed(sorted(texts))
        self.changes = any(len(s) > 1 for s in self.positive + self.negative)  # an edit or alternation somewhere
        self.current = self._texts(0)

    def _texts(self, index: int) -> tuple:
        return tuple(syntax.text_at(s, index) for s in self.positive + self.negative)

    def first(self) -> dict:
        return self.encoder.for_step(self.positive, self.negative, 0, self.chunks)

    def at(self, index: int):
        """(positive, negative) embeddings for step `index` when its texts differ from the last step's, else None."""
        if not self.changes:
            return None
        texts = self._texts(index)
        if texts == self.current:
            return None
        self.current = texts
        kwargs = self.encoder.for_step(self.positive, self.negative, index, self.chunks)
        return kwargs["prompt_embeds"], kwargs["negative_prompt_embeds"]
