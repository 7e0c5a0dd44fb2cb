"""RAFT optical flow (torchvision's raft_large), with its weights already in torch's cache: never downloaded.

Deforum's default flow method. torchvision ships the network; the weights file is the one torchvision
itself would fetch (raft_large_C_T_SKHT_V2-ff5fadd5.pth under torch.hub.get_dir()/checkpoints), which
the user fetches once on purpose. It is read weights-only. The network runs on the CPU or the run's
device, in float32, and gives the same flow for the same frames, which a resumed run relies on.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import ModelError

UPDATES = 12  # RAFT's refinement iterations, torchvision's default
SMALLEST = 128  # its correlation pyramid needs at least 16 features a side, at 1/8 of the picture


def weights_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"


def unavailable() -> str | None:
    """Why RAFT cannot run here (torchvision does not load, or its weights are not in torch's cache), or None."""
    try:
        import torchvision.models.optical_flow  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision failing against this torch
        return f"RAFT needs torchvision, which does not load here ({type(exc).__name__})"
    if not weights_path().is_file():
        return f"RAFT's weights are not in torch's cache ({weights_path()}); scumble never downloads them: fetch them once with torchvision's raft_large(weights='DEFAULT')"
    return None


@functools.cache
def _network(device: str):
    reason = unavailable()
    if reason:
        raise ModelError(reason)
    import torch
    from torchvision.models.optical_flow import raft_large
    try:
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        network = raft_large(weights=None)
        network.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise ModelError(f"{weights_path()}: not RAFT's weights ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''})") from None
    return network.eval().to(device)


def load(device="cpu") -> None:
    """Load now, so a run that needs RAFT fails before its first frame when it cannot have it."""
    _network(str(device))


def optical_flow(a: np.ndarray, b: np.ndarray, device="cpu") -> np.ndarray:
    """Where each pixel of `a` went in `b`, HxWx2 float32 (the frames padded to RAFT's multiple of 8 and at least 128, the flow cropped back)."""
    import torch

    network = _network(str(device))
    height, width = a.shape[:2]
    pad = (0, max(SMALLEST, width + -width % 8) - width, 0, max(SMALLEST, height + -height % 8) - height)

    def tensor(frame: np.ndarray):
        rgb = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
        x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None].to(device) / 127.5 - 1  # RAFT reads -1..1
        return torch.nn.functional.pad(x, pad, mode="replicate")

    with torch.inference_mode():
        flows = network(tensor(a), tensor(b), num_flow_updates=UPDATES)
    return np.ascontiguousarray(flows[-1][0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy())
