"""In-between frames from the user's frame-interpolation network: FILM as its PyTorch port publishes it, a TorchScript file.

The published FILM files (film_net_fp32.pt, film_net_fp16.pt) are TorchScript: `model(frame_a, frame_b, t)`
on 1x3xHxW tensors in 0..1 with t a 1x1 tensor, giving the frame at time t between them. TorchScript is
code as well as weights, so it loads only behind --allow-pickle. There is no maintained library that runs
RIFE's published weights without VapourSynth or torchvision; a RIFE network exported to TorchScript with
the same call works here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, UsageError, first_line

ALIGN = 64  # FILM's feature pyramid halves the picture six times: pad to a multiple of 64, then crop back


class FrameInterpolator:
    """One TorchScript interpolation network, loaded and tried on a small pair before the first frame is made."""

    def __init__(self, path: str, allow_pickle: bool, device="cpu"):
        import torch

        file = Path(path).expanduser()
        if not file.is_file():
            raise UsageError(f"--interpolate-model {path}: no such file")
        if not allow_pickle:
            raise UsageError(f"--interpolate-model {path}: a TorchScript file carries code as well as weights; pass --allow-pickle to load it")
        try:
            model = torch.jit.load(str(file), map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError or zipfile errors on a file that is not TorchScript
            raise ModelError(f"--interpolate-model {path}: not a TorchScript file ({first_line(exc)})") from None
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
            return torch.nn.functional.pad(x, pad, mode="replicate")

        x0, x1 = tensor(a), tensor(b)
        frames = []
        for k in range(1, count + 1):
            t = x0.new_full((1, 1), k / (count + 1))
            try:
                with torch.inference_mode():
                    out = self.model(x0, x1, t)
            except Exception as exc:  # noqa: BLE001 - a TorchScript network raises whatever its code raises
                raise ModelError(f"--interpolate-model {self.name}: failed on a {width}x{height} pair: {first_line(exc)}") from None
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x0.shape):
                raise ModelError(f"--interpolate-model {self.name}: gave {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} for two frames of {tuple(x0.shape)}; it must give one frame of the same shape")
            frame = out[0, :, :height, :width].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            frames.append(np.round(frame * 255).astype(np.uint8))
        return frames
