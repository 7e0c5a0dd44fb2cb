"""The names of the ControlNet preprocessors, light enough for `--help` (the work is in images/control.py)."""

from __future__ import annotations

from ..errors import UsageError

TYPES = ("canny", "scribble", "lineart", "softedge", "tile", "shuffle", "depth", "openpose", "none")
# Preprocessors that are networks: the user's own, named by an option (scumble neither ships nor downloads one).
WITH_A_MODEL = {"depth": "depth_model", "openpose": "pose_model"}  # the option naming each one's model
MODEL_KINDS = {"depth": "a transformers depth-estimation model (Depth Anything, DPT, ZoeDepth)", "openpose": "a transformers ViTPose model"}
# The A1111 ControlNet extension's module that does the same, for the `parameters` text it reads back.
A1111_MODULES = {"canny": "canny", "scribble": "scribble_xdog", "lineart": "lineart_standard", "softedge": "softedge", "tile": "tile_resample", "shuffle": "shuffle", "depth": "depth_midas", "openpose": "openpose", "none": "none"}


def model_flag(kind: str) -> str:
    return "--" + WITH_A_MODEL[kind].replace("_", "-")


def check_type(kind: str, flag: str = "--control-type") -> str:
    """Refuse, before any work, an unknown preprocessor."""
    if kind not in TYPES:
        raise UsageError(f"{flag}: unknown type {kind[:60]!r}; choose from {', '.join(TYPES)}")
    return kind
