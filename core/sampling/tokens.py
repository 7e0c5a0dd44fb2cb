"""A model's tokenizer alone (no weights), to show how a prompt is read."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..loading import sources


def tokenizer_for(model: str):
    """The model's first CLIP tokenizer: its folder's, else the SD 1.x vocabulary scumble ships (SDXL's first encoder shares it)."""
    from transformers import CLIPTokenizerFast  # transformers 5's CLIPTokenizer; under 4 the slow one splits rare characters otherwise

    source = sources.resolve(model)
    folder = Path(source.location) / "tokenizer" if source.kind in ("builtin", "folder") else sources.CONFIGS_ROOT / "sd15" / "tokenizer"
    try:
        return CLIPTokenizerFast.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"--model {model}: cannot read its tokenizer ({str(exc).splitlines()[0][:160]})") from None


def explain(model: str, text: str) -> list[list[tuple[str, float]]]:
    """The prompt's chunks as (token, weight), without the start, end and padding tokens."""
    from .conditioning import tokenize

    tokenizer = tokenizer_for(model)
    tokens = tokenize(tokenizer, text)
    specials = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    return [[(tokenizer.convert_ids_to_tokens(i).replace("</w>", ""), w) for i, w in zip(ids, weights) if i not in specials] for ids, weights in zip(tokens.ids, tokens.weights)]
