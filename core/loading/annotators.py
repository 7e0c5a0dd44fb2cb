"""The networks behind the depth and openpose preprocessors: the user's transformers models, loaded once per run.

Like --depth-model, a pose model is never downloaded: it is a folder, or a hub id already in the local cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, first_line
from .sources import HUB_ID

POSE_THRESHOLD = 0.3  # a point scored lower is not drawn (OpenPose's own threshold for body parts)


def load(kind: str, name: str, device="cpu"):
    """The network of the `depth` or `openpose` preprocessor, with `control_map(image)` and `record()`."""
    if kind == "depth":
        from .depth import DepthEstimator

        return DepthEstimator(name, device)
    return PoseEstimator(name, device)


class PoseEstimator:
    """A ViTPose model (transformers' VitPoseForPoseEstimation) that finds one person's 17 COCO points.

    ViTPose reads the person inside a box; scumble has no person detector, so the box is the whole
    picture: one person a picture, as a sketch of a figure or a portrait has.
    """

    def __init__(self, name: str, device="cpu"):
        from .loaders import quiet_libraries

        quiet_libraries()
        import torch
        from transformers import AutoConfig, AutoImageProcessor, VitPoseForPoseEstimation

        path = Path(name).expanduser()
        if path.exists() and not (path / "config.json").is_file():
            raise ModelError(f"--pose-model {name}: " + ("the folder has no config.json" if path.is_dir() else "not a folder") + " (give a transformers ViTPose model folder or a hub id)")
        if not path.exists() and not HUB_ID.match(name):
            raise ModelError(f"--pose-model {name}: no such folder")
        location = str(path.resolve()) if path.is_dir() else name
        try:
            kind = AutoConfig.from_pretrained(location, local_files_only=True).model_type
            if kind != "vitpose":  # transformers would load another model's folder into ViTPose with random weights
                raise ModelError(f"--pose-model {name}: is a {kind} model, not ViTPose")
            self.processor = AutoImageProcessor.from_pretrained(location, local_files_only=True)
            self.model = VitPoseForPoseEstimation.from_pretrained(location, local_files_only=True, dtype=torch.float32).to(device).eval()
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - transformers raises anything from OSError to its own types on a bad folder
            where = "the folder" if path.is_dir() else "the local Hugging Face cache (pose models are never downloaded)"
            raise ModelError(f"--pose-model {name}: could not load a ViTPose model from {where}: {first_line(exc)}") from None
        if self.model.config.num_labels < 17:
            raise ModelError(f"--pose-model {name}: finds {self.model.config.num_labels} points; the openpose map needs COCO's 17 body points")
        self.name, self.location, self.device = name, location, device

    def points(self, frame: np.ndarray) -> np.ndarray:
        """17 rows of (x, y) in the frame's pixels, NaN where the point scored below POSE_THRESHOLD or fell outside the frame
        (the box is the whole frame, so a point outside it is a miss, not a limb out of view)."""
        import torch

        height, width = frame.shape[:2]
        boxes = [[[0.0, 0.0, float(width), float(height)]]]
        try:
            inputs = self.processor(frame, boxes=boxes, return_tensors="pt").to(self.device)
            extra = {"dataset_index": torch.zeros(1, dtype=torch.long, device=self.device)} if self.model.config.backbone_config.num_experts > 1 else {}
            with torch.inference_mode():
                outputs = self.model(**inputs, **extra)
            found = self.processor.post_process_pose_estimation(outputs, boxes=boxes)[0][0]
        except Exception as exc:  # noqa: BLE001 - a model that loads can still refuse its inputs
            raise ModelError(f"--pose-model {self.name}: failed on a {width}x{height} picture: {first_line(exc)}") from None
        points = found["keypoints"].float().cpu().numpy().reshape(-1, 2)[:17]
        scores = found["scores"].float().cpu().numpy().reshape(-1)[:17]
        outside = (points[:, 0] < 0) | (points[:, 0] > width - 1) | (points[:, 1] < 0) | (points[:, 1] > height - 1)
        points[(scores < POSE_THRESHOLD) | outside] = np.nan
        return points

    def control_map(self, frame: np.ndarray) -> np.ndarray:
        from ..images.control import draw_pose, openpose_points

        return draw_pose([openpose_points(self.points(frame))], *frame.shape[:2])

    def record(self) -> dict:
        return {"model": self.location, "model_type": self.model.config.model_type, "threshold": POSE_THRESHOLD}
