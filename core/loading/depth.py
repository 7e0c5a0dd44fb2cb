"""A transformers depth-estimation model (Depth Anything, DPT, ZoeDepth) for 3D animation: a folder, or a hub id already cached.

It is never downloaded: a depth model is an extra the user fetches on purpose, and a run that needs
one fails before its first frame, in one line, when it is not there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, first_line
from .sources import HUB_ID



def _location(name: str) -> str:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"--depth-model {name}: the folder has no config.json (give a transformers depth-estimation model folder)")
        return str(path)
    if path.exists():
        raise ModelError(f"--depth-model {name}: not a folder (give a transformers depth-estimation model folder or a hub id)")
    if not HUB_ID.match(name):
        raise ModelError(f"--depth-model {name}: no such folder")
    return name


def _is_metric(config) -> bool:
    """Whether larger outputs are farther (metric depth) rather than nearer (relative inverse depth)."""
    return config.model_type == "zoedepth" or getattr(config, "depth_estimation_type", "relative") == "metric"


class DepthEstimator:
    """One depth model, loaded once. `metric`: its outputs grow with distance; otherwise they shrink (inverse depth)."""

    def __init__(self, name: str, device="cpu"):
        from .loaders import quiet_libraries

        quiet_libraries()
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        location = _location(name)
        try:
            self.processor = AutoImageProcessor.from_pretrained(location, local_files_only=True)
            self.model = AutoModelForDepthEstimation.from_pretrained(location, local_files_only=True, dtype=torch.float32).to(device).eval()
        except Exception as exc:  # noqa: BLE001 - transformers and safetensors raise anything from OSError to their own types on a bad folder
            where = "the folder" if Path(location).is_dir() else "the local Hugging Face cache (depth models are never downloaded)"
            raise ModelError(f"--depth-model {name}: could not load a depth-estimation model from {where}: {first_line(exc)}") from None
        self.name, self.device, self.metric = name, device, _is_metric(self.model.config)
        self.location = str(Path(location).resolve()) if Path(location).is_dir() else location

    def raw(self, frame: np.ndarray) -> np.ndarray:
        """The model's own output for an HxWx3 RGB frame, at the frame's size.

        A model whose processor keeps the aspect ratio (Depth Anything, ZoeDepth) runs at the frame's
        size, rounded to the multiple it needs; one trained on a fixed square (plain DPT) runs at that.
        Either way the output is resized (bicubic) to the frame.
        """
        import torch

        height, width = frame.shape[:2]
        size = {"size": {"height": height, "width": width}} if getattr(self.processor, "keep_aspect_ratio", False) else {}
        try:
            inputs = self.processor(images=frame, return_tensors="pt", **size).to(self.device)
            with torch.inference_mode():
                predicted = self.model(**inputs).predicted_depth
        except Exception as exc:  # noqa: BLE001 - a model that loads can still refuse its inputs (a processor for another model)
            raise ModelError(f"--depth-model {self.name}: failed on a {width}x{height} frame: {first_line(exc)}") from None
        resized = torch.nn.functional.interpolate(predicted.reshape(1, 1, *predicted.shape[-2:]).float(), size=(height, width), mode="bicubic", align_corners=False)
        return resized[0, 0].cpu().numpy()

    def control_map(self, frame: np.ndarray) -> np.ndarray:
        """The depth ControlNet's input: HxWx3 uint8, nearest white, stretched to the full range as the extension's annotators do."""
        raw = self.raw(frame)
        near = -raw if self.metric else raw
        low, high = float(near.min()), float(near.max())
        scaled = (near - low) / (high - low) if high - low > 1e-12 else np.zeros_like(near)
        grey = np.round(scaled * 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))

    def record(self) -> dict:
        """What made a depth control map, for the record and A1111's `Module`."""
        kind = self.model.config.model_type
        module = {"depth_anything": "depth_anything", "zoedepth": "depth_zoe"}.get(kind, "depth_midas")
        return {"model": self.location, "model_type": kind, "a1111_module": module}
