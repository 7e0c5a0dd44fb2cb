"""img2img and inpaint as tasks of the runner: items are input images, names mirror the inputs.

A bad input (not an image, a missing caption or mask, too large) fails alone, and the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ScumbleError
from ..images import inputs
from ..images import pixels as px
from ..records import output
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from . import control
from .control import Controls
from .items import Item, MatchedFiles, Prepared, max_side, read_verified


@dataclass
class EditState:
    pixels: np.ndarray  # what goes to the model, already at processing size
    original: np.ndarray | None = None  # inpaint: the full input, for pasting back
    soft_mask: np.ndarray | None = None  # inpaint: feathered mask at the original size
    model_mask: np.ndarray | None = None  # inpaint: mask at processing size
    box: tuple[int, int, int, int] | None = None  # inpaint --only-masked: the crop in the original


class Edit:
    def __init__(self, name: str):
        self.name = name
        self._masks: MatchedFiles | None = None
        self.controls: Controls | None = None

    # ---------------------------------------------------------------- items and names

    def items(self, request: ImageRequest) -> tuple[list[Item], list[tuple[str, str]]]:
        prompt, negative = request.prompts[0]
        self.controls = Controls(request) if request.control is not None else None
        if request.replay is not None:
            replay = request.replay
            found = [(inputs.InputItem(entry.image, Path(entry.image), Path(Path(entry.image).name)), entry) for entry in replay.inputs]
            return [Item(i, replay.seeds[i], replay.prompts[i], negative, source.label, source, entry, write=i == replay.position) for i, (source, entry) in enumerate(found)], []
        found, problems = inputs.expand(list(request.inputs), request.recursive)
        if request.task == "inpaint" and found:
            self._masks = MatchedFiles("--mask", request.mask.mask, "mask")
        items = [Item(i, (request.seed + i) % 2**32, prompt, negative, source.label, source) for i, source in enumerate(found)]
        return items, problems

    def assign_targets(self, request: ImageRequest, items: list[Item]) -> None:
        if request.replay is not None:
            record = request.replay.record
            chosen = items[request.replay.position]
            chosen.target = output.OutputPlan.from_option(request.output.output, 1).target(index=record.get("index", 0), seed=chosen.seed, prompt=chosen.prompt)
            return
        plan = plan_output(request, [item.source for item in items])
        owners: dict[Path, str] = {}
        for item in items:
            try:
                item.target = mirrored_target(plan, item.source)
            except ScumbleError as exc:
                item.problem = str(exc)
                continue
            if item.target is not None and plan.kind == "folder":
                if item.target in owners:
                    item.problem = f"{item.label}: would write {item.target}, as {owners[item.target]} does"
                    continue
                owners[item.target] = item.label

    def record_fields(self, request: ImageRequest) -> dict:
        d = request.denoise
        fields = {"strength": d.strength, "exact_steps": d.exact_steps, "num_inference_steps": d.num_inference_steps, "steps_run": d.steps_run}
        if request.task == "img2img":
            return fields | {"resize": request.resize}
        m = request.mask
        return fields | {"mask_blur": m.blur, "invert_mask": m.invert, "fill": m.fill, "only_masked": m.only_masked, "padding": m.padding}

    # ---------------------------------------------------------------- one input

    def prepare(self, engine: Engine, request: ImageRequest, item: Item) -> Prepared:
        if item.problem:  # found while naming the outputs: this input alone fails
            raise InputError(item.problem)
        if request.captions and request.replay is None:
            item.prompt = caption_for(item.source, request)
        if item.recorded is not None:
            data = read_verified(item.recorded.image, item.recorded.image_sha256, f"{request.replay.path}: its input")
        else:
            data = item.source.read_bytes()
        image = inputs.decode_rgb(data, item.label)
        h, w = image.shape[:2]
        recorded = {"image": str(item.source.path.resolve()) if item.source.path else item.label, "image_sha256": inputs.sha256(data)}
        if self.name == "img2img":
            pw, ph = processing_size(engine, request, w, h, item.label)
            prep = Prepared(item, (pw, ph), recorded, EditState(px.resize(image, pw, ph, request.resize)))
        else:
            prep = self._prepare_inpaint(engine, request, item, image, recorded)
        if self.controls is not None:
            self.controls.prepare(prep, self.controls.sources(request, item), self._fitter(request, image, prep))
        return prep

    def _fitter(self, request: ImageRequest, image: np.ndarray, prep: Prepared):
        """How a control image lines up with the picture: fitted to the input's frame, then resized (and cropped) as the input is."""
        h, w = image.shape[:2]
        pw, ph = prep.size
        box = prep.state.box

        def fit(source: np.ndarray | None) -> np.ndarray:
            framed = image if source is None else px.resize(source, w, h, request.control.resize)
            if self.name == "img2img":
                return px.resize(framed, pw, ph, request.resize)
            if box is not None:
                x0, y0, x1, y1 = box
                framed = framed[y0:y1, x0:x1]
            return px.resize(framed, pw, ph, "just")

        return fit

    def _prepare_inpaint(self, engine: Engine, request: ImageRequest, item: Item, image: np.ndarray, recorded: dict) -> Prepared:
        m = request.mask
        h, w = image.shape[:2]
        if item.recorded is not None:
            mask_label = item.recorded.mask
            mask_bytes = read_verified(mask_label, item.recorded.mask_sha256, f"{request.replay.path}: its mask")
        else:
            mask_bytes, mask_label = self._masks.for_item(item.source)
        mask = inputs.decode_mask(mask_bytes, mask_label)
        recorded |= {"mask": mask_label, "mask_sha256": inputs.sha256(mask_bytes)}
        notices = []
        if mask.shape != image.shape[:2]:
            if m.strict:
                raise InputError(f"{item.label}: mask {mask_label} is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h} (--strict)")
            notices.append(f"{item.label}: mask {mask.shape[1]}x{mask.shape[0]} resized to the image's {w}x{h}")
            mask = px.resize(mask[..., None].repeat(3, 2), w, h, "just")[..., 0]
        if m.invert:
            mask = 255 - mask
        if not (mask > 127).any():
            raise InputError(f"{item.label}: the mask {mask_label} marks nothing to repaint (white means repaint)")
        soft = px.feather(mask, m.blur)
        filled = px.fill_masked(image, mask, m.fill, item.seed)
        box = None
        region, region_mask = filled, soft
        sampling = request.sampling
        if m.only_masked:
            native = engine.native_size
            x0, y0, x1, y1 = box = px.mask_box(soft, m.padding, (sampling.width or native) / (sampling.height or native))
            region, region_mask = filled[y0:y1, x0:x1], soft[y0:y1, x0:x1]
            if sampling.width and sampling.height:
                pw, ph = sampling.width, sampling.height
            else:  # the crop is generated at the model's own resolution, keeping its aspect ratio
                scale = native / max(x1 - x0, y1 - y0)
                pw, ph = px.round8((x1 - x0) * scale), px.round8((y1 - y0) * scale)
        else:
            pw, ph = processing_size(engine, request, w, h, item.label)
        state = EditState(px.resize(region, pw, ph, "just"), image, soft, px.resize(region_mask[..., None].repeat(3, 2), pw, ph, "just")[..., 0], box)
        return Prepared(item, (pw, ph), recorded, state, notices)

    # ---------------------------------------------------------------- the model, and after it

    def generate(self, engine: Engine, request: ImageRequest, batch: list[Prepared], on_step) -> list:
        from PIL import Image

        jobs = [p.item.job for p in batch]
        images = [Image.fromarray(p.state.pixels) for p in batch]
        controls = control.call(request, batch)
        if self.name == "img2img":
            return engine.img2img(jobs, images, request.sampling, request.denoise, on_step, control=controls)
        masks = [Image.fromarray(p.state.model_mask) for p in batch]
        return engine.inpaint(jobs, images, masks, request.sampling, request.denoise, on_step, control=controls)

    def finish(self, request: ImageRequest, prep: Prepared, generated):
        from PIL import Image

        out = np.asarray(generated.convert("RGB"))
        if self.name == "img2img":
            return Image.fromarray(out)
        state = prep.state
        h, w = state.original.shape[:2]
        if state.box is None:
            canvas = px.resize(out, w, h, "just")
        else:
            x0, y0, x1, y1 = state.box
            canvas = state.original.copy()
            canvas[y0:y1, x0:x1] = px.resize(out, x1 - x0, y1 - y0, "just")
        return Image.fromarray(px.paste_back(state.original, canvas, state.soft_mask))


def plan_output(request: ImageRequest, items: list[inputs.InputItem]) -> output.OutputPlan:
    return output.mirrored_plan(request.output.output, request.inputs, items)


mirrored_target = output.mirrored_target


def processing_size(engine: Engine, request: ImageRequest, width: int, height: int, label: str) -> tuple[int, int]:
    sampling = request.sampling
    if sampling.width and sampling.height:
        size = sampling.width, sampling.height
    elif sampling.width or sampling.height:  # one given: keep the input's aspect ratio
        scale = (sampling.width / width) if sampling.width else (sampling.height / height)
        size = sampling.width or px.round8(width * scale), sampling.height or px.round8(height * scale)
    else:
        size = px.round8(width), px.round8(height)
    limit = max_side(engine)
    if max(size) > limit:
        raise InputError(f"{label}: {width}x{height} would be made at {size[0]}x{size[1]}, larger than this model can use (at most {limit} a side); pass --width or --height")
    return size


def caption_for(item: inputs.InputItem, request: ImageRequest) -> str:
    prompt = request.prompts[0][0] if request.prompts else ""
    caption = item.path.with_suffix(".txt") if item.path else None
    if caption is not None and caption.is_file():
        data = inputs.InputItem(str(caption), caption, Path(caption.name)).read_bytes()
        text = data.decode("utf-8", errors="replace").strip()
        if text:
            return text
    if prompt:
        return prompt
    raise InputError(f"{item.label}: no caption file {item.relative.with_suffix('.txt').name} beside it (and no --prompt to fall back on)")
