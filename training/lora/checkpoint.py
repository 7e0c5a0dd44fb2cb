"""A training run's state in one safetensors file: the LoRA weights, the optimizer's moments, the step.

No pickle: torch.save would be simpler, but a checkpoint is a file a user may be handed, and loading
a pickle runs code. Tensors go in as tensors; the rest (settings, optimizer groups, the learning-rate
schedule's position) as JSON in the header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ...core.errors import ScumbleError, UsageError

FORMAT = "scumble-lora-checkpoint/1"


@dataclass
class State:
    step: int
    identity: dict  # the settings that decide the run's path; a resume must match them
    params: dict[str, torch.Tensor]  # trainable parameters by name
    optimizer: dict  # torch's optimizer state_dict
    schedule: dict  # the learning-rate scheduler's state_dict
    losses: list[float]


def encode(state: State) -> bytes:
    from safetensors.torch import save

    tensors = {f"param/{name}": value.detach().cpu().contiguous() for name, value in state.params.items()}
    for index, slots in state.optimizer["state"].items():
        for key, value in slots.items():
            tensors[f"opt/{index}/{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    header = {
        "format": FORMAT,
        "step": str(state.step),
        "identity": json.dumps(state.identity, sort_keys=True),
        "param_groups": json.dumps(state.optimizer["param_groups"]),
        "schedule": json.dumps(state.schedule),
        "losses": json.dumps(state.losses),
    }
    return save(tensors, metadata=header)


def load(path: Path) -> State:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        raise ScumbleError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); delete it to start over") from None
    if header.get("format") != FORMAT:
        raise ScumbleError(f"{path}: not a scumble LoRA checkpoint; delete it to start over")
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, index, name = key.split("/", 2)
            slots.setdefault(int(index), {})[name] = value
    params = {key[len("param/") :]: value for key, value in tensors.items() if key.startswith("param/")}
    optimizer = {"state": slots, "param_groups": json.loads(header["param_groups"])}
    return State(int(header["step"]), json.loads(header["identity"]), params, optimizer, json.loads(header["schedule"]), json.loads(header["losses"]))


def check_identity(path: Path, recorded: dict, current: dict) -> None:
    """A resume continues only the run it was: one line naming the first setting that differs."""
    for key in sorted(set(recorded) | set(current)):
        if recorded.get(key) != current.get(key):
            raise UsageError(f"--resume: the checkpoint in {path.parent} was made with another {key.replace('_', ' ')} ({_shown(recorded.get(key))}, now {_shown(current.get(key))}); rerun with its settings, or delete it to start over")


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."
