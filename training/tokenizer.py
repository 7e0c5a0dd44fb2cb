"""A CLIP-format BPE vocabulary learned from the built-in model's captions.

The real CLIP vocabulary has 49,408 entries, and an embedding table that size would be most of
the model's size budget. This learns a few hundred merges over the same byte alphabet instead,
so `CLIPTokenizer` loads it unchanged and any text still tokenizes (unknown words fall back to
byte pieces). Hand-written because `tokenizers`' trainer does not emit CLIP's `</w>`-suffixed
base alphabet, which CLIPTokenizer needs for every word-final byte.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_WORD = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+", re.UNICODE)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _symbols(word: str, byte_map: dict[int, str]) -> tuple[str, ...]:
    chars = [byte_map[b] for b in word.encode("utf-8")]
    return tuple(chars[:-1]) + (chars[-1] + "</w>",)


def learn_merges(corpus: list[str], max_merges: int = 2000, min_count: int = 2) -> list[tuple[str, str]]:
    byte_map = bytes_to_unicode()
    words = Counter(w for line in corpus for w in _WORD.findall(line.lower()))
    split = {w: _symbols(w, byte_map) for w in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, syms in split.items():
            for pair in zip(syms, syms[1:]):
                pairs[pair] += words[w]
        if not pairs:
            break
        best_count = max(pairs.values())
        if best_count < min_count:
            break
        best = min(p for p, c in pairs.items() if c == best_count)  # ties broken by name: deterministic
        merges.append(best)
        joined = best[0] + best[1]
        for w, syms in split.items():
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            split[w] = tuple(out)
    return merges


def write_tokenizer(folder: Path, corpus: list[str], model_max_length: int = 77) -> int:
    """Write vocab.json, merges.txt and the tokenizer config; return the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    merges = learn_merges(corpus)
    base = list(bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": model_max_length,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2))
    return len(vocab)


def write_clip_vocab(bpe_gz: Path, folder: Path) -> int:
    """Rebuild the real CLIP vocabulary (49,408 tokens) from open_clip's bpe_simple_vocab_16e6.txt.gz.

    Used once to make the tokenizer files shipped with the single-file checkpoint configs.
    """
    import gzip

    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    base = list(bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + [BOS, EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return len(tokens)


if __name__ == "__main__":
    import sys

    print(write_clip_vocab(Path(sys.argv[1]), Path(sys.argv[2])))
