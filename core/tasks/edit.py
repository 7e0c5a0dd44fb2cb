"""img2img and inpaint as tasks of the runner: items are input images, names mirror the inputs.

A bad input (not an image, a missing caption or mask, too large) fails alone, and the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ScumbleError, UsageError
from ..images import inputs
from ..images import pixels as px
from ..records import output
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from .items import Item, Prepared, max_side, read_verified


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
        self._masks: _Masks | None = None

    # ---------------------------------------------------------------- items and names

    def items(self, request: ImageRequest) -> tuple[list[Item], list[tuple[str, str]]]:
        prompt, negative = request.prompts[0]
        if request.replay is not None:
            replay = request.replay
            found = [(inputs.InputItem(entry.image, Path(entry.image), Path(Path(entry.image).name)), entry) for entry in replay.inputs]
            return [Item(i, replay.seeds[i], replay.prompts[i], negative, source.label, source, entry, write=i == replay.position) for i, (source, entry) in enumerate(found)], []
        found, problems = inputs.expand(list(request.inputs), request.recursive)
        if request.task == "inpaint" and found:
            self._masks = _Masks(request.mask.mask)
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
            return Prepared(item, (pw, ph), recorded, EditState(px.resize(image, pw, ph, request.resize)))
        return self._prepare_inpaint(engine, request, item, image, recorded)

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
        if self.name == "img2img":
            return engine.img2img(jobs, images, request.sampling, request.denoise, on_step)
        masks = [Image.fromarray(p.state.model_mask) for p in batch]
        return engine.inpaint(jobs, images, masks, request.sampling, request.denoise, on_step)

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
    option = request.output.output
    single = len(items) == 1 and len(request.inputs) == 1 and not Path(request.inputs[0]).is_dir()
    if option == "-":
        if not single:
            raise UsageError(f"-o -: standard output takes one image, but {len(items)} inputs were given")
        return output.stdout_plan()
    if option and single and (output.is_special(Path(option)) or Path(option).suffix.lower() in output.IMAGE_SUFFIXES) and not Path(option).is_dir():
        return output.OutputPlan("file", Path(option).expanduser())
    if option and Path(option).suffix and not Path(option).is_dir():
        raise UsageError(f"-o {option}: many inputs need a folder (-o {Path(option).with_suffix('')}/)")
    return output.OutputPlan("folder", Path(option).expanduser() if option else output.DEFAULT_FOLDER)


def mirrored_target(plan: output.OutputPlan, item: inputs.InputItem) -> Path | None:
    if plan.kind != "folder":
        return plan.path
    parts = [output.slug(part, 120) for part in item.relative.with_suffix("").parts if part not in ("", ".", "..")]
    target = (plan.path / Path(*parts)).with_suffix(".png").resolve()
    if not target.is_relative_to(plan.path.resolve()):
        raise ScumbleError(f"{item.label}: its name would write outside {plan.path}")
    return target


class _Masks:
    """--mask as one file for every image, or a folder matched to images by file stem."""

    def __init__(self, spec: str):
        path = Path(spec).expanduser()
        self.folder = path if path.is_dir() else None
        self.single: bytes | None = None
        self.label = spec
        if self.folder is None:
            if not path.is_file():
                raise InputError(f"--mask {spec}: no such file or folder")
            self.single = inputs.InputItem(f"--mask {spec}", path, Path(path.name)).read_bytes()
        else:
            self.by_stem: dict[str, Path] = {}
            for p in sorted(self.folder.rglob("*")):
                if p.is_file() and p.suffix.lower() in inputs.IMAGE_SUFFIXES:
                    self.by_stem.setdefault(p.stem, p)
            if not self.by_stem:
                raise InputError(f"--mask {spec}: no images in this folder")

    def for_item(self, item: inputs.InputItem) -> tuple[bytes, str]:
        if self.single is not None:
            return self.single, self.label
        path = self.by_stem.get(item.relative.stem)
        if path is None:
            raise InputError(f"{item.label}: no mask named {item.relative.stem}.* in {self.folder}")
        return inputs.InputItem(str(path), path, Path(path.name)).read_bytes(), str(path)


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
