"""img2img and inpaint runs: many inputs through one loaded model, each bad input reported and skipped.

Inputs stream through in order; consecutive inputs of the same processing size share a forward
pass, so memory stays flat however long the folder is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..sampling import strength as denoise
from ..images import pixels as imaging
from ..images import inputs
from ..records import metadata
from ..records import output
from ..sampling.engine import Engine, ImageJob, Sampling
from ..errors import InputError, ScumbleError, UsageError
from .sharding import my_share
from .runner import ImageResult, Reporter, RunSummary, SilentReporter, base_record, check_seed


@dataclass(frozen=True)
class EditRequest:
    task: str  # img2img | inpaint
    inputs: tuple[str, ...]
    sampling: Sampling
    prompt: str | None = None
    negative_prompt: str = ""
    captions: bool = False
    strength: float = 0.75
    exact_steps: bool = False
    resize: str = "just"
    seed: int | None = None
    batch_size: int = 1
    recursive: bool = False
    output: str | None = None
    overwrite: bool = False
    skip_existing: bool = False
    # inpaint only
    mask: str | None = None
    mask_blur: float = 4.0
    invert_mask: bool = False
    fill: str = "original"
    only_masked: bool = False
    padding: int = 32
    strict: bool = False
    seeds: tuple[int, ...] = ()  # replay: the recorded seed of each input, instead of seed + index
    shard: str | None = None


@dataclass
class Prepared:
    """One input, decoded and ready for the model, with what is needed to finish it afterwards."""

    item: inputs.InputItem
    job: ImageJob
    target: Path | None
    pixels: np.ndarray  # what goes to the model, already at processing size
    original: np.ndarray | None = None  # inpaint: the full input, for pasting back
    soft_mask: np.ndarray | None = None  # inpaint: feathered mask at the original size
    model_mask: np.ndarray | None = None  # inpaint: mask at processing size
    box: tuple[int, int, int, int] | None = None  # inpaint --only-masked: the crop in the original
    record: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def _check(request: EditRequest) -> None:
    denoise.check_strength(request.strength)
    if request.task == "inpaint" and not request.mask:
        raise UsageError("--mask is required for inpaint")
    if not request.captions and request.prompt is None:
        raise UsageError("give --prompt, or --captions to read a .txt caption beside each image")
    if request.batch_size < 1:
        raise UsageError(f"--batch-size {request.batch_size}: must be at least 1")
    if request.mask_blur < 0:
        raise UsageError(f"--mask-blur {request.mask_blur}: must be 0 or more")
    if request.padding < 0:
        raise UsageError(f"--padding {request.padding}: must be 0 or more")
    if request.resize not in imaging.RESIZE_MODES:
        raise UsageError(f"--resize: unknown mode {request.resize!r}; choose from {', '.join(imaging.RESIZE_MODES)}")
    if request.fill not in imaging.FILL_MODES:
        raise UsageError(f"--fill: unknown mode {request.fill!r}; choose from {', '.join(imaging.FILL_MODES)}")
    for flag, value in (("--width", request.sampling.width), ("--height", request.sampling.height)):
        if value and (value < 0 or value % 8):
            raise UsageError(f"{flag} {value}: must be a positive multiple of 8 (nearest: {max(8, value // 8 * 8)} or {(value // 8 + 1) * 8})")


def plan_output(request: EditRequest, items: list[inputs.InputItem]) -> output.OutputPlan:
    single = len(items) == 1 and len(request.inputs) == 1 and not Path(request.inputs[0]).is_dir()
    if request.output == "-":
        if not single:
            raise UsageError(f"-o -: standard output takes one image, but {len(items)} inputs were given")
        return output.OutputPlan("stdout")
    if request.output and single and (output.is_special(Path(request.output)) or Path(request.output).suffix.lower() == ".png") and not Path(request.output).is_dir():
        return output.OutputPlan("file", Path(request.output).expanduser())
    if request.output and Path(request.output).suffix and not Path(request.output).is_dir():
        raise UsageError(f"-o {request.output}: many inputs need a folder (-o {Path(request.output).with_suffix('')}/)")
    return output.OutputPlan("folder", Path(request.output).expanduser() if request.output else output.DEFAULT_FOLDER)


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
        self.folder = Path(spec).expanduser() if Path(spec).expanduser().is_dir() else None
        self.single: bytes | None = None
        self.label = spec
        if self.folder is None:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise InputError(f"--mask {spec}: no such file or folder")
            self.single = path.read_bytes()
        else:
            self.by_stem = {}
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
        return path.read_bytes(), str(path)


def processing_size(engine: Engine, request: EditRequest, width: int, height: int) -> tuple[int, int]:
    if request.sampling.width and request.sampling.height:
        return request.sampling.width, request.sampling.height
    if request.sampling.width or request.sampling.height:  # one given: keep the input's aspect ratio
        scale = (request.sampling.width / width) if request.sampling.width else (request.sampling.height / height)
        return request.sampling.width or imaging.round8(width * scale), request.sampling.height or imaging.round8(height * scale)
    return imaging.round8(width), imaging.round8(height)


def prepare(engine: Engine, request: EditRequest, item: inputs.InputItem, job: ImageJob, target: Path | None, masks: _Masks | None) -> Prepared:
    data = item.read_bytes()
    image = inputs.decode_rgb(data, item.label)
    h, w = image.shape[:2]
    record = {"inputs": {"image": str(item.path.resolve()) if item.path else item.label, "image_sha256": inputs.sha256(data)}}
    if request.task == "img2img":
        pw, ph = processing_size(engine, request, w, h)
        return Prepared(item, job, target, imaging.resize(image, pw, ph, request.resize), record=record)

    mask_bytes, mask_label = masks.for_item(item)
    mask = inputs.decode_mask(mask_bytes, mask_label)
    record["inputs"] |= {"mask": mask_label, "mask_sha256": inputs.sha256(mask_bytes)}
    notices = []
    if mask.shape != image.shape[:2]:
        if request.strict:
            raise InputError(f"{item.label}: mask {mask_label} is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h} (--strict)")
        notices.append(f"{item.label}: mask {mask.shape[1]}x{mask.shape[0]} resized to the image's {w}x{h}")
        mask = imaging.resize(mask[..., None].repeat(3, 2), w, h, "just")[..., 0]
    if request.invert_mask:
        mask = 255 - mask
    if not (mask > 127).any():
        raise InputError(f"{item.label}: the mask {mask_label} marks nothing to repaint (white means repaint)")
    soft = imaging.feather(mask, request.mask_blur)
    filled = imaging.fill_masked(image, mask, request.fill, job.seed)
    box = None
    region, region_mask = filled, soft
    if request.only_masked:
        native = engine.native_size
        x0, y0, x1, y1 = box = imaging.mask_box(soft, request.padding, (request.sampling.width or native) / (request.sampling.height or native))
        region, region_mask = filled[y0:y1, x0:x1], soft[y0:y1, x0:x1]
        if request.sampling.width and request.sampling.height:
            pw, ph = request.sampling.width, request.sampling.height
        else:  # the crop is generated at the model's own resolution, keeping its aspect ratio
            scale = native / max(x1 - x0, y1 - y0)
            pw, ph = imaging.round8((x1 - x0) * scale), imaging.round8((y1 - y0) * scale)
    else:
        pw, ph = processing_size(engine, request, w, h)
    pixels = imaging.resize(region, pw, ph, "just")
    model_mask = imaging.resize(region_mask[..., None].repeat(3, 2), pw, ph, "just")[..., 0]
    return Prepared(item, job, target, pixels, image, soft, model_mask, box, record, notices)


def finish(request: EditRequest, prep: Prepared, generated) -> np.ndarray:
    out = np.asarray(generated.convert("RGB"))
    if request.task == "img2img":
        return out
    h, w = prep.original.shape[:2]
    if prep.box is None:
        canvas = imaging.resize(out, w, h, "just")
    else:
        x0, y0, x1, y1 = prep.box
        canvas = prep.original.copy()
        canvas[y0:y1, x0:x1] = imaging.resize(out, x1 - x0, y1 - y0, "just")
    return imaging.paste_back(prep.original, canvas, prep.soft_mask)


def run_edit(engine: Engine, request: EditRequest, reporter: Reporter | None = None) -> RunSummary:
    from PIL import Image

    reporter = reporter or SilentReporter()
    _check(request)
    seed = check_seed(request.seed)
    items, problems = inputs.expand(list(request.inputs), request.recursive)
    summary = RunSummary()
    for label, problem in problems:
        summary.failed.append((label, problem))
        reporter.image_failed(label, problem)
    if not items:
        summary.seconds = 0.0
        return summary
    plan = plan_output(request, items)
    masks = _Masks(request.mask) if request.task == "inpaint" else None
    scheduler_name = engine.use_scheduler(request.sampling)
    record0 = base_record(engine, request.task, request.sampling, scheduler_name)
    num_inference_steps, steps_run = denoise.plan(request.sampling.steps, request.strength, request.exact_steps)
    record0 |= {"strength": request.strength, "exact_steps": request.exact_steps, "num_inference_steps": num_inference_steps, "steps_run": steps_run}
    if request.task == "img2img":
        record0["resize"] = request.resize
    else:
        record0 |= {"mask_blur": request.mask_blur, "invert_mask": request.invert_mask, "fill": request.fill, "only_masked": request.only_masked, "padding": request.padding}
    mine, share = my_share(list(enumerate(items)), request.shard)
    record0["shard"] = share
    started = time.perf_counter()
    reporter.start(len(mine), steps_run)

    targets: dict[Path, str] = {}
    batch: list[Prepared] = []

    def flush():
        if not batch:
            return
        jobs = [p.job for p in batch]
        pil = [Image.fromarray(p.pixels) for p in batch]
        if request.task == "img2img":
            results = engine.img2img(jobs, pil, request.sampling, request.strength, request.exact_steps, reporter.step)
        else:
            masks_pil = [Image.fromarray(p.model_mask) for p in batch]
            results = engine.inpaint(jobs, pil, masks_pil, request.sampling, request.strength, request.exact_steps, reporter.step)
        for position, (prep, generated) in enumerate(zip(batch, results)):
            final = finish(request, prep, generated)
            w, h = prep.size
            record = dict(record0, prompt=prep.job.prompt, negative_prompt=prep.job.negative_prompt, seed=prep.job.seed, index=prep.job.index, width=w, height=h, **prep.record)
            record["batch"] = {
                "size": len(batch),
                "position": position,
                "seeds": [p.job.seed for p in batch],
                "prompts": [p.job.prompt for p in batch],
                "inputs": [p.record["inputs"] for p in batch],
            }
            try:
                output.write_bytes(output.encode_png(Image.fromarray(final), metadata.png_text(record)), prep.target, overwrite=request.overwrite)
            except ScumbleError as exc:
                summary.failed.append((prep.item.label, str(exc)))
                reporter.image_failed(prep.item.label, str(exc))
                continue
            result = ImageResult(str(prep.target) if prep.target else None, prep.job.seed, record)
            summary.written.append(result)
            reporter.image_done(result)
        batch.clear()

    for index, item in mine:
        job_seed = request.seeds[index] if request.seeds else (seed + index) % (2**32)
        try:
            target = mirrored_target(plan, item)
            if target is not None and plan.kind == "folder":
                if target in targets:
                    raise InputError(f"{item.label}: would write {target}, as {targets[target]} does")
                targets[target] = item.label
            if target is not None and target.exists() and not output.is_special(target):
                if request.skip_existing:
                    result = ImageResult(str(target), job_seed, {}, skipped=True)
                    summary.skipped.append(result)
                    reporter.image_done(result)
                    continue
                if not request.overwrite:
                    raise ScumbleError(f"{target}: already exists (pass --overwrite to replace it, or --skip-existing)")
            prompt = caption_for(item, request)
            prep = prepare(engine, request, item, ImageJob(prompt, request.negative_prompt, job_seed, index), target, masks)
        except ScumbleError as exc:
            summary.failed.append((item.label, str(exc)))
            reporter.image_failed(item.label, str(exc))
            continue
        for notice in prep.notices:
            reporter.notice(notice)
        if batch and (batch[0].size != prep.size or len(batch) >= request.batch_size):
            flush()
        batch.append(prep)
    flush()
    summary.seconds = time.perf_counter() - started
    return summary


def caption_for(item: inputs.InputItem, request: EditRequest) -> str:
    if not request.captions:
        return request.prompt or ""
    caption = item.path.with_suffix(".txt") if item.path else None
    if caption is not None and caption.is_file():
        text = caption.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text
    if request.prompt is not None:
        return request.prompt
    raise InputError(f"{item.label}: no caption file {item.relative.with_suffix('.txt').name} beside it (and no --prompt to fall back on)")


def replay_edit(engine: Engine, path: Path, record: dict, output_option: str | None, overwrite: bool, reporter: Reporter | None = None) -> RunSummary:
    """Re-run the recorded batch from the same input files (checked by hash) and write the one image `path` holds."""
    import tempfile

    from PIL import Image

    batch = record["batch"]
    for entry in batch["inputs"]:
        source = Path(entry["image"])
        if not source.is_file():
            raise InputError(f"{path}: its input {source} is gone, so it cannot be replayed")
        if inputs.sha256(source.read_bytes()) != entry["image_sha256"]:
            raise InputError(f"{path}: its input {source} has changed since (sha256 differs)")
    mask_paths = {entry.get("mask") for entry in batch["inputs"]} - {None}
    if len(mask_paths) > 1:
        raise UsageError(f"{path}: its batch used several masks; replay it with --batch-size 1 images")
    sampling = Sampling(record["steps"], record["cfg"], record["width"], record["height"], record["scheduler"], record.get("noise_schedule", "default"), record.get("timestep_spacing", ""), record.get("logsnr_shift", 0.0), record.get("cfg_cutoff", 0.0))
    plan = output.OutputPlan.from_option(output_option, 1)
    target = plan.target(index=record.get("index", 0), seed=record["seed"], prompt=record["prompt"])
    output.refuse_existing(target, overwrite)
    with tempfile.TemporaryDirectory(prefix="scumble-replay-") as tmp:
        if len(set(batch["prompts"])) != 1:
            raise UsageError(f"{path}: its batch mixed prompts (captions); replay is supported for one prompt per batch")
        request = EditRequest(
            task=record["task"],
            inputs=tuple(entry["image"] for entry in batch["inputs"]),
            sampling=sampling,
            prompt=batch["prompts"][0],
            negative_prompt=record.get("negative_prompt", ""),
            strength=record["strength"],
            exact_steps=record.get("exact_steps", False),
            resize=record.get("resize", "just"),
            batch_size=batch["size"],
            output=tmp + "/",
            mask=next(iter(mask_paths), None),
            mask_blur=record.get("mask_blur", 4.0),
            invert_mask=record.get("invert_mask", False),
            fill=record.get("fill", "original"),
            only_masked=record.get("only_masked", False),
            padding=record.get("padding", 32),
            seeds=tuple(batch["seeds"]),
        )
        summary = run_edit(engine, request, SilentReporter())
        if summary.failed:
            raise ScumbleError(f"{path}: replay failed: {summary.failed[0][1]}")
        chosen = summary.written[batch["position"]]
        image = Image.open(chosen.path)
        image.load()
    new_record = dict(chosen.record, replayed_from=str(path))
    output.write_bytes(output.encode_png(image, metadata.png_text(new_record)), target, overwrite=overwrite)
    result = ImageResult(str(target) if target else None, record["seed"], new_record)
    (reporter or SilentReporter()).image_done(result)
    return RunSummary(written=[result], seconds=summary.seconds)
