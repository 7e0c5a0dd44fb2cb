"""LoRAs and textual-inversion embeddings, loaded into a pipeline through diffusers (which uses peft).

A LoRA given with --lora is loaded at start; one named in a prompt (`<lora:NAME:W>`) is found in
--lora-dir and loaded the first time it is used. Embeddings are loaded at start, each under its file
name, and used by writing that name in a prompt. Every file is hashed for the record: the full sha256
for replay, and A1111's short hashes for its `Lora hashes` and `TI hashes` fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, UsageError
from .sources import PICKLE_SUFFIXES

SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


@dataclass(frozen=True)
class AdapterFile:
    name: str  # adapter or token name: the file's stem
    path: str
    sha256: str
    short: str  # A1111's: LoRA "addnet" hash, or the embedding file's sha256, first 12 hex digits


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lora_short_hash(path: Path, full: str) -> str:
    """A1111's LoRA hash: the file's `sshs_model_hash`, else sha256 of the tensors after the safetensors header."""
    if path.suffix.lower() != ".safetensors":
        return full[:12]
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length) or b"{}")
        stored = (header.get("__metadata__") or {}).get("sshs_model_hash")
        if isinstance(stored, str) and re.fullmatch(r"[0-9a-f]{12,64}", stored):
            return stored[:12]
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _described(path: Path, kind: str) -> AdapterFile:
    full = _sha256(path)
    return AdapterFile(path.stem, str(path), full, lora_short_hash(path, full) if kind == "lora" else full[:12])


def _checked_file(path: str, flag: str, allow_pickle: bool) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"{flag} {path}: no such file")
    if file.suffix.lower() not in SUFFIXES:
        raise ModelError(f"{flag} {path}: expected a .safetensors file (or {', '.join(PICKLE_SUFFIXES)} with --allow-pickle)")
    if file.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelError(f"{flag} {path}: pickle files can run code when loaded; pass --allow-pickle to load it (weights only)")
    return file


def _state(file: Path):
    """What diffusers' loaders take: the path for safetensors, a weights-only dict for pickle files."""
    if file.suffix.lower() == ".safetensors":
        return str(file)
    import torch

    return torch.load(file, map_location="cpu", weights_only=True)


class Adapters:
    """The LoRAs and embeddings of one engine."""

    def __init__(self, pipe, allow_pickle: bool = False, lora=(), lora_dir=(), embedding=(), embedding_dir=(), fuse_lora: bool = False):
        """The run's --lora, --lora-dir, --embedding, --embedding-dir and --fuse-lora (none at all for a replay, which adds its record's)."""
        self.pipe = pipe
        self.allow_pickle = allow_pickle
        self.lora_dirs = [Path(d).expanduser() for d in lora_dir]
        self.embedding_dirs = [Path(d).expanduser() for d in embedding_dir]
        self.loras: dict[str, AdapterFile] = {}
        self.flag_loras: list[tuple[str, float]] = []
        self.fused = False
        self.embeddings: dict[str, AdapterFile] = {}
        for path, weight in lora:
            self.flag_loras.append((self._load_lora(_checked_file(path, "--lora", self.allow_pickle), f"--lora {path}").name, weight))
        for folder, root in zip(embedding_dir, self.embedding_dirs):
            if not root.is_dir():
                raise ModelError(f"--embedding-dir {folder}: no such folder")
            for file in sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and (p.suffix.lower() == ".safetensors" or self.allow_pickle)):
                self._load_embedding(file, f"--embedding-dir {folder}: {file.name}")
        for path in embedding:
            self._load_embedding(_checked_file(path, "--embedding", self.allow_pickle), f"--embedding {path}")
        if fuse_lora and self.flag_loras:
            self.activate([])
            pipe.fuse_lora(adapter_names=[name for name, _ in self.flag_loras])
            self.fused = True

    # ---------------------------------------------------------------- LoRA

    def _load_lora(self, file: Path, label: str) -> AdapterFile:
        name = re.sub(r"[^\w-]", "_", file.stem)
        if name in self.loras:
            return self.loras[name]
        described = _described(file, "lora")
        try:
            self.pipe.load_lora_weights(_state(file), adapter_name=name)
        except Exception as exc:  # noqa: BLE001 - peft and diffusers raise ValueError, KeyError, RuntimeError on a LoRA for another model
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{label}: does not fit this model ({first})") from None
        self.loras[name] = AdapterFile(name, described.path, described.sha256, described.short)
        return self.loras[name]

    def find(self, name: str) -> AdapterFile:
        """A LoRA a prompt names: loaded already, or NAME.safetensors (etc.) in a --lora-dir."""
        key = re.sub(r"[^\w-]", "_", name)
        if key in self.loras:
            return self.loras[key]
        for folder in self.lora_dirs:
            for suffix in SUFFIXES:
                file = folder / f"{name}{suffix}"
                if file.is_file() and (suffix == ".safetensors" or self.allow_pickle):
                    return self._load_lora(file, f"<lora:{name}>")
        where = ", ".join(str(d) for d in self.lora_dirs) or "no --lora-dir given"
        raise UsageError(f"<lora:{name}>: no {name}.safetensors in {where}")

    def _acting(self, prompt_loras) -> dict[str, float]:
        """The adapters that act for a prompt, by name, with their weights: the --lora ones (unless fused), then the prompt's."""
        acting: dict[str, float] = {} if self.fused else dict(self.flag_loras)
        for ref in prompt_loras:
            acting[self.find(ref.name).name] = ref.weight
        return acting

    def activate(self, prompt_loras) -> None:
        """Make exactly the LoRAs of this prompt act."""
        acting = self._acting(prompt_loras)  # first: a LoRA the prompt names is loaded here, the first time
        if not self.loras:
            return
        if acting:
            self.pipe.set_adapters(list(acting), adapter_weights=list(acting.values()))
        else:
            self.pipe.disable_lora()

    def used(self, prompt_loras) -> list[tuple[AdapterFile, float]]:
        """Every LoRA a prompt's image is made with, fused ones included, with its weight (for the record)."""
        fused = [(self.loras[name], weight) for name, weight in self.flag_loras] if self.fused else []
        return fused + [(self.loras[name], weight) for name, weight in self._acting(prompt_loras).items()]

    def load_recorded(self, record: dict, tagged: set[str], label: str) -> None:
        """A replayed record's LoRAs and embeddings, each found by its sha256 (where it was, else in --lora-dir or
        --embedding-dir), or one line naming the one that is missing or changed. `tagged`: the LoRAs its prompt names."""
        for kind, entries, folders in (("LoRA", record.get("loras") or [], self.lora_dirs), ("embedding", record.get("embeddings") or [], self.embedding_dirs)):
            for entry in entries:
                if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "path", "sha256")):
                    raise UsageError(f"{label}: its record's {kind} entry is malformed")
                candidates = [Path(entry["path"])] + [folder / f"{entry['name']}{suffix}" for folder in folders for suffix in SUFFIXES]
                found = next((c for c in candidates if c.is_file() and _sha256(c) == entry["sha256"]), None)
                if found is None:
                    raise UsageError(f"{label}: {kind} {entry['name']} (sha256 {entry['sha256'][:12]}) is missing or has changed; pass --{'lora' if kind == 'LoRA' else 'embedding'}-dir with it")
                if kind == "embedding":
                    self._load_embedding(found, f"{label}: embedding {entry['name']}")
                    continue
                loaded = self._load_lora(found, f"{label}: LoRA {entry['name']}")
                if entry["name"] not in tagged:  # it came from --lora: it acts on every image, at its recorded weight
                    self.flag_loras.append((loaded.name, float(entry.get("weight", 1.0))))

    # ---------------------------------------------------------------- embeddings

    def _load_embedding(self, file: Path, label: str) -> None:
        described = _described(file, "embedding")
        state = _state(file)
        try:
            if hasattr(self.pipe, "text_encoder_2") and self.pipe.text_encoder_2 is not None:
                self._load_xl_embedding(file, state)
            else:
                self.pipe.load_textual_inversion(state, token=file.stem)
        except Exception as exc:  # noqa: BLE001 - diffusers raises ValueError on a shape that does not fit
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{label}: does not fit this model ({first})") from None
        self.embeddings[file.stem] = described

    def _load_xl_embedding(self, file: Path, state) -> None:
        """SDXL embeddings hold one tensor per encoder (clip_l, clip_g), loaded under the same token."""
        from safetensors.torch import load_file

        tensors = load_file(state) if isinstance(state, str) else state
        if not {"clip_l", "clip_g"} <= set(tensors):
            raise ValueError("an SDXL embedding needs clip_l and clip_g tensors")
        pipe = self.pipe
        pipe.load_textual_inversion(tensors["clip_l"], token=file.stem, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(tensors["clip_g"], token=file.stem, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)

    def used_embeddings(self, texts) -> list[AdapterFile]:
        words = set(re.findall(r"[\w-]+", " ".join(texts)))
        return [e for name, e in self.embeddings.items() if name in words]
