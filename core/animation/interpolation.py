"""In-between frames from the user's frame-interpolation network: FILM's TorchScript file or RIFE 4.x's flownet.

The published FILM files (film_net_fp32.pt, film_net_fp16.pt) are TorchScript: `model(frame_a, frame_b, t)`
on 1x3xHxW tensors in 0..1 with t a 1x1 tensor, giving the frame at time t between them. TorchScript is
code as well as weights, so it loads only behind --allow-pickle. RIFE publishes weights alone (flownet.pkl,
a pickled state dict, or a .safetensors conversion): the network is rife.py's, sized from the file, and the
pickle is read weights-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, UsageError, first_line

ALIGN = 64  # FILM's pyramid halves the picture six times and RIFE's coarsest block sees it at 1/64: pad, then crop back


class FrameInterpolator:
    """One interpolation network (FILM's TorchScript or a RIFE 4.x flownet), loaded and tried on a small pair before the first frame is made."""

    def __init__(self, path: str, allow_pickle: bool, device="cpu"):
        import torch

        file = Path(path).expanduser()
        if not file.is_file():
            raise UsageError(f"--interpolate-model {path}: no such file")
        self.kind, model = _load(file, path, allow_pickle)
        self.device = torch.device(device)
        self.dtype = torch.float32 if self.device.type == "cpu" else next((p.dtype for p in model.parameters()), torch.float32)
        self.model = model.to(device=self.device, dtype=self.dtype)
        self.name = file.name
        probe = np.zeros((ALIGN, ALIGN, 3), np.uint8)
        self.between(probe, probe + 255, 1)  # a network with another call fails here, before any frame is made

    def between(self, a: np.ndarray, b: np.ndarray, count: int) -> list[np.ndarray]:
        """`count` frames evenly spaced between HxWx3 uint8 frames `a` and `b` (at t = k / (count + 1))."""
        import torch

        height, width = a.shape[:2]
        pad = (0, -width % ALIGN, 0, -height % ALIGN)

        def tensor(frame: np.ndarray):
            x = torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].to(self.device, self.dtype) / 255
            return torch.nn.functional.pad(x, pad, mode="replicate" if self.kind == "FILM" else "constant")  # RIFE was trained padded with black

        x0, x1 = tensor(a), tensor(b)
        frames = []
        for k in range(1, count + 1):
            t = k / (count + 1)
            try:
                with torch.inference_mode():
                    out = self.model(x0, x1, x0.new_full((1, 1), t) if self.kind == "FILM" else t)
            except Exception as exc:  # noqa: BLE001 - a TorchScript network raises whatever its code raises
                raise ModelError(f"--interpolate-model {self.name}: failed on a {width}x{height} pair: {first_line(exc)}") from None
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x0.shape):
                raise ModelError(f"--interpolate-model {self.name}: gave {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} for two frames of {tuple(x0.shape)}; it must give one frame of the same shape")
            frame = out[0, :, :height, :width].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            frames.append(np.round(frame * 255).astype(np.uint8))
        return frames


def _load(file: Path, path: str, allow_pickle: bool):
    """("FILM", a TorchScript module) or ("RIFE", rife.IFNet); a .safetensors file needs no --allow-pickle."""
    import torch

    from . import rife

    if file.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(file))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"--interpolate-model {path}: not a readable .safetensors file ({first_line(exc)})") from None
        return "RIFE", rife.from_state_dict(state, file.name)
    if not allow_pickle:
        raise UsageError(f"--interpolate-model {path}: a TorchScript or pickle file can carry code as well as weights; pass --allow-pickle to load it")
    try:
        return "FILM", torch.jit.load(str(file), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError or zipfile errors on a file that is not TorchScript
        script_error = first_line(exc)
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - the weights-only unpickler raises UnpicklingError, RuntimeError or EOFError
        raise ModelError(f"--interpolate-model {path}: neither a TorchScript file ({script_error}) nor a weights-only RIFE flownet") from None
    if not isinstance(state, dict):
        raise ModelError(f"--interpolate-model {path}: holds a {type(state).__name__}, not TorchScript or a RIFE flownet's weights")
    return "RIFE", rife.from_state_dict(state, file.name)
