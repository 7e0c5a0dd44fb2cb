"""ControlNet inputs of the image tasks: each ControlNet's control image for an item, read, fitted to the
picture, preprocessed and recorded with its hash.

A control image is one file for every image, a folder matched to the inputs by file stem (as --mask
is), or, in img2img and inpaint, the input itself. The task says how an image at the input's size maps
onto the picture the model makes (its resize, inpaint's crop), so a control image lines up with the
input exactly; a control image of another shape is first fitted to the input by --control-resize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..images import control, inputs
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from ..sampling.settings import ControlCall
from .items import Item, MatchedFiles, Prepared, read_verified

Source = tuple[np.ndarray, dict] | None  # a control image as read, with its record entry; None: the item's input


class Controls:
    """The run's control images, found once per run (a folder is listed once, a single file read once)."""

    def __init__(self, request: ImageRequest):
        self.options = request.control
        self.files: dict[str, MatchedFiles] = {}
        self.networks: dict = {}
        if request.replay is not None:
            return  # a replay reads each image's recorded files, checked by hash
        for unit in self.options.units:
            if unit.image is not None and unit.image not in self.files:
                self.files[unit.image] = MatchedFiles("--control-image", unit.image, "control image")
        folders = [spec for spec, found in self.files.items() if found.folder is not None]
        if request.task == "txt2img" and folders:
            raise UsageError(f"--control-image {folders[0]}: a folder is matched to input images by file stem, and txt2img has none; name one image (or use img2img)")

    def load_networks(self, device) -> None:
        """The depth and pose networks, loaded with the run, not with its first image: a missing model is the run's error, not each image's."""
        from ..loading import annotators

        self.networks = {kind: annotators.load(kind, name, device) for kind, name in self.options.networks}

    def sources(self, request: ImageRequest, item: Item) -> list[Source]:
        """Each ControlNet's control image for this item, in the order of the ControlNets."""
        if request.replay is not None:
            recorded = request.replay.controls[item.index]  # a replayed batch's items are numbered by their place in it
            return [None if entry is None else _read(read_verified(entry.image, entry.image_sha256, f"{request.replay.path}: its control image"), entry.image) for entry in recorded]
        out: list[Source] = []
        for unit in self.options.units:
            if unit.image is None:
                out.append(None)
                continue
            data, label = self.files[unit.image].for_item(item.source)
            out.append(_read(data, label))
        return out

    def prepare(self, prep: Prepared, sources: list[Source], fit: Callable[[np.ndarray | None], np.ndarray]) -> None:
        """Fit each control image to the picture (`fit(None)`: the input itself), run its preprocessor, and record it."""
        prep.control = self.preprocessed(prep, sources, fit)
        prep.inputs["control"] = [None if source is None else source[1] for source in sources]

    def preprocessed(self, prep: Prepared, sources: list[Source], fit: Callable[[np.ndarray | None], np.ndarray]) -> list:
        """Each ControlNet's image fitted by `fit` and run through its preprocessor."""
        from PIL import Image

        options = self.options
        settings = control.Settings(options.canny_low, options.canny_high, seed=prep.item.seed, networks=self.networks)  # shuffle: the image's own seed
        return [Image.fromarray(control.preprocess(unit.module, fit(None if source is None else source[0]), settings)) for unit, source in zip(options.units, sources)]


def _read(data: bytes, label: str) -> tuple[np.ndarray, dict]:
    return inputs.decode_rgb(data, label), {"image": str(Path(label).expanduser().resolve()), "image_sha256": inputs.sha256(data)}


def call(request: ImageRequest, batch: list[Prepared], hires: bool = False) -> ControlCall | None:
    """What the engine needs of the ControlNets for one batch (`hires`: for the hires fix's second pass), or None when the run has none."""
    if request.control is None:
        return None
    units = request.control.units
    return ControlCall(tuple(tuple(p.control_hires if hires else p.control) for p in batch), tuple(u.weight for u in units), tuple(u.start for u in units), tuple(u.end for u in units), request.control.guess_mode)


def record_fields(engine: Engine, request: ImageRequest, controls: Controls | None) -> dict:
    """Each ControlNet as the record names it: where it is, its hash, and everything about how it acted."""
    if request.control is None or controls is None:
        return {}
    options = request.control
    units = []
    for unit, found in zip(options.units, engine.controlnets.files):
        settings = control.settings_record(unit.module, control.Settings(options.canny_low, options.canny_high, networks=controls.networks))
        units.append({
            "model": found.location, "name": found.name, "kind": found.kind, "sha256": found.sha256, "short": found.short, "config": found.config,
            "weight": unit.weight, "start": unit.start, "end": unit.end, "module": unit.module, "settings": settings, "resize": options.resize,
        })
    return {"controlnets": units, "guess_mode": options.guess_mode}

