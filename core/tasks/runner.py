"""One loop for every image task: items, seeds, output names, batching, writing, the record, replay,
--skip-existing, sharding and reporting.

A task (txt2img, img2img, inpaint) says only what its items are, how to prepare one for the model,
which engine call makes a batch, and how to finish an image; everything else happens here, once.
Inputs stream through in order and consecutive ones of the same size share a forward pass, so
memory stays flat however long the folder is.
"""

from __future__ import annotations

import time
from pathlib import Path

from ... import __version__
from ..errors import ScumbleError, UsageError
from ..records import metadata, output
from ..request.build import check_replay_model
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from ..sampling.schedulers import a1111_label
from . import control, edit, hires, txt2img
from .items import Item, Prepared, Task, max_side
from .sharding import my_share
from ..records.reporting import ImageResult, Reporter, RunSummary, SilentReporter  # noqa: F401 - the runner's public results


TASKS = {"txt2img": txt2img.Txt2Img, "img2img": lambda: edit.Edit("img2img"), "inpaint": lambda: edit.Edit("inpaint")}  # made per run: a task holds its run's state (the --mask folder)


def base_record(engine: Engine, request: ImageRequest, share: str | None) -> dict:
    import diffusers
    import torch

    sampling = request.sampling
    width, height = engine.size(sampling.width, sampling.height)
    scheduler_name = engine.scheduler_name(sampling)
    sampler, schedule_type = a1111_label(scheduler_name, sampling.noise_schedule)
    return {
        "version": __version__,
        "task": request.task,
        "model": {"name": engine.source.name, "kind": engine.source.kind, "location": engine.source.location, "hash": engine.model_hash},
        "vae": engine.vae_name,
        "steps": sampling.steps,
        "cfg": sampling.cfg,
        "width": width,
        "height": height,
        "scheduler": scheduler_name,
        "noise_schedule": str(sampling.noise_schedule),
        "timestep_spacing": sampling.timestep_spacing,
        "logsnr_shift": sampling.logsnr_shift,
        "cfg_cutoff": sampling.cfg_cutoff,
        "step_cache": sampling.step_cache,
        "tome": sampling.tome,
        "sampler": sampler,
        "schedule_type": schedule_type,
        "device": engine.runtime.device.type,
        "dtype": engine.runtime.dtype_name,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "shard": share,
        "quality": request.output.quality,
    }


def plan(request: ImageRequest, reporter: Reporter | None = None) -> "Run":
    """Everything that needs no model: the items, their output names, this share, and which are still to make.

    Run first, so that a run with nothing to make (every output there, without --overwrite) says so
    without loading a model, and a clash of names is refused before the wait.
    """
    planned = Run(request, reporter or SilentReporter())
    planned.plan()
    return planned


def run(engine: Engine, request: ImageRequest, reporter: Reporter | None = None, planned: "Run | None" = None) -> RunSummary:
    """Make every image the request asks for; a bad input fails alone and the run goes on."""
    return (planned or plan(request, reporter)).run(engine)


class Run:
    """One run: planned without a model (`plan`), then made with one (`run`)."""

    def __init__(self, request: ImageRequest, reporter: Reporter):
        self.request, self.reporter = request, reporter
        self.task: Task = TASKS[request.task]()
        self.summary = RunSummary()
        self.record0: dict = {}
        self.mine: list[Item] = []
        self.share: str | None = None
        self.pending: list[Item] | None = None
        self.engine: Engine | None = None

    @property
    def nothing_to_make(self) -> bool:
        return not self.pending

    def fail(self, label: str, message: str) -> None:
        self.summary.failed.append((label, message))
        self.reporter.image_failed(label, message)

    def plan(self) -> None:
        request = self.request
        items, problems = self.task.items(request)
        for label, problem in problems:
            self.fail(label, problem)
        if not items:
            return
        self.task.assign_targets(request, items)
        self.mine, self.share = (items, None) if request.replay else my_share(items, request.output.shard)
        self.pending = self.still_to_make(self.mine)

    def run(self, engine: Engine) -> RunSummary:
        started = time.perf_counter()
        request, self.engine = self.request, engine
        if self.nothing_to_make:
            return self.summary
        if request.replay is not None:
            check_replay_model(request.replay.record, engine, Path(request.replay.path))
            engine.load_recorded_adapters(request.replay.record, f"--replay {request.replay.path}")
        check_size(engine, request)
        if self.task.controls is not None:
            self.task.controls.load_networks(engine.runtime.device)
        self.record0 = base_record(engine, request, self.share) | self.task.record_fields(request) | control.record_fields(engine, request, self.task.controls)
        pending = self.pending
        self.reporter.start(sum(item.write for item in pending), request.denoise.steps_run if request.denoise else request.sampling.steps)
        self.make(pending)
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def still_to_make(self, items: list[Item]) -> list[Item] | None:
        """The items still to make: --skip-existing leaves out what exists, and nothing is replaced without --overwrite."""
        request, pending = self.request, []
        for item in items:
            target = item.target
            if item.write and target is not None and target.exists() and not output.is_special(target):
                if request.output.skip_existing and request.replay is None:
                    result = ImageResult(str(target), item.seed, {}, skipped=True)
                    self.summary.skipped.append(result)
                    self.reporter.image_done(result)
                    continue
                if not request.output.overwrite:
                    self.fail(item.label if item.source else str(target), f"{target}: already exists (pass --overwrite to replace it, or --skip-existing)")
                    if request.replay is not None:
                        return None
                    continue
            pending.append(item)
        return pending

    def make(self, pending: list[Item]) -> None:
        """Prepare items in order; consecutive ones of one size share a forward pass of at most --batch-size."""
        batch: list[Prepared] = []
        for item in pending:
            try:
                prep = self.task.prepare(self.engine, self.request, item)
            except ScumbleError as exc:
                if self.request.replay is not None:
                    raise
                self.fail(item.label, str(exc))
                continue
            for notice in prep.notices:
                self.reporter.notice(notice)
            if batch and (_batch_key(batch[0]) != _batch_key(prep) or len(batch) >= self.request.batch_size):
                self.write_batch(batch)
                batch = []
            batch.append(prep)
        if batch:
            self.write_batch(batch)

    def write_batch(self, batch: list[Prepared]) -> None:
        images = self.task.generate(self.engine, self.request, batch, self.reporter.step)
        for position, (prep, image) in enumerate(zip(batch, images)):
            if not prep.item.write:
                continue
            record = _record(self.record0, self.request, batch, position, prep, self.engine.adapter_record(prep.item.prompt, prep.item.negative_prompt))
            try:
                encoded = output.encode_image(self.task.finish(self.request, prep, image), metadata.png_text(record), prep.item.target, self.request.output.quality)
                output.write_bytes(encoded, prep.item.target, overwrite=self.request.output.overwrite)
            except ScumbleError as exc:
                self.fail(prep.item.label, str(exc))
                continue
            result = ImageResult(str(prep.item.target) if prep.item.target else None, prep.item.seed, record)
            self.summary.written.append(result)
            self.reporter.image_done(result)


def _batch_key(prep: Prepared):
    """Images share a forward pass only at one size and with the same LoRAs (weights act on the whole batch)."""
    from ..sampling.prompts import extract_loras

    return prep.size, extract_loras(prep.item.prompt)[1]


def _record(record0: dict, request: ImageRequest, batch: list[Prepared], position: int, prep: Prepared, adapters: dict) -> dict:
    item = prep.item
    width, height = prep.size
    record = dict(record0, prompt=item.prompt, negative_prompt=item.negative_prompt, seed=item.seed, index=item.index, width=width, height=height, clip_skip=request.sampling.clip_skip, tiling=request.sampling.tiling, eta=request.sampling.eta, ensd=request.sampling.ensd, **adapters)
    if prep.inputs:
        record["inputs"] = prep.inputs
    record["batch"] = {
        "size": len(batch),
        "position": position,
        "prompts": [p.item.prompt for p in batch],
        "negative_prompts": [p.item.negative_prompt for p in batch],
        "seeds": [p.item.seed for p in batch],
    }
    if item.subseed is not None:
        record |= {"subseed": item.subseed, "subseed_strength": request.sampling.subseed_strength}
        record["batch"]["subseeds"] = [p.item.subseed for p in batch]
    if any(p.inputs for p in batch):
        record["batch"]["inputs"] = [p.inputs for p in batch]
    if request.replay is not None:
        record["replayed_from"] = request.replay.path
    return record


def check_size(engine: Engine, request: ImageRequest) -> None:
    """Sizes only the loaded model can judge (at most four times its native side), before any work."""
    limit = max_side(engine)
    for flag, value in (("--width", request.sampling.width), ("--height", request.sampling.height)):
        if value > limit:
            raise UsageError(f"{flag} {value}: larger than this model can use (at most {limit}, four times its native {engine.native_size})")
    if request.hires is not None:  # the final size needs the model's native size (for --width 0): checked here, before any work
        hires.check_size(engine, request)
