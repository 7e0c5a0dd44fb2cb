"""A run: many images through one loaded model, each written as soon as its batch is done.

The CLI builds a request, passes a Reporter, and renders what comes back; everything about
seeds, batching, names, metadata and failures lives here so every subcommand behaves alike.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from ... import __version__
from ..records import metadata
from ..records import output
from ..sampling.engine import Engine, ImageJob, Sampling
from ..errors import ScumbleError, UsageError
from ..records.output import DEFAULT_PATTERN
from ..sampling.schedulers import a1111_label
from .sharding import my_share

MAX_SEED = 2**32 - 1


class Reporter(Protocol):
    def start(self, total_images: int, steps: int) -> None: ...
    def step(self, done: int, total: int) -> None: ...
    def image_done(self, result: "ImageResult") -> None: ...
    def image_failed(self, label: str, message: str) -> None: ...
    def notice(self, message: str) -> None: ...
    def frame_done(self, index: int, total: int, resumed: bool = False) -> None: ...


class SilentReporter:
    def start(self, total_images: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int) -> None:
        pass

    def image_done(self, result: "ImageResult") -> None:
        pass

    def image_failed(self, label: str, message: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def frame_done(self, index: int, total: int, resumed: bool = False) -> None:
        pass


@dataclass
class ImageResult:
    path: str | None  # None when written to standard output
    seed: int
    record: dict
    skipped: bool = False


@dataclass
class RunSummary:
    written: list[ImageResult] = field(default_factory=list)
    skipped: list[ImageResult] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True)
class Txt2ImgRequest:
    prompts: tuple[tuple[str, str], ...]  # (prompt, negative prompt), one per distinct prompt
    sampling: Sampling
    count: int = 1  # images per prompt
    seed: int | None = None
    batch_size: int = 1
    output: str | None = None
    name_pattern: str = DEFAULT_PATTERN
    overwrite: bool = False
    skip_existing: bool = False
    shard: str | None = None


def random_seed() -> int:
    return random.SystemRandom().randrange(MAX_SEED)


def check_seed(seed: int | None) -> int:
    if seed is None:
        return random_seed()
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed {seed}: must be between 0 and {MAX_SEED}")
    return seed


def plan_jobs(prompts: Iterable[tuple[str, str]], count: int, seed: int) -> list[ImageJob]:
    """Every image of the run, in order: image i gets seed + i (A1111's convention)."""
    jobs = []
    for prompt, negative in prompts:
        for _ in range(count):
            index = len(jobs)
            jobs.append(ImageJob(prompt, negative, (seed + index) % (MAX_SEED + 1), index))
    return jobs


def base_record(engine: Engine, task: str, sampling: Sampling, scheduler_name: str) -> dict:
    import diffusers
    import torch

    width, height = engine.check_size(sampling.width, sampling.height)
    sampler, schedule_type = a1111_label(scheduler_name, sampling.noise_schedule)
    return {
        "version": __version__,
        "task": task,
        "model": {"name": engine.source.name, "kind": engine.source.kind, "location": engine.source.location, "hash": engine.model_hash},
        "vae": engine.vae_name,
        "steps": sampling.steps,
        "cfg": sampling.cfg,
        "width": width,
        "height": height,
        "scheduler": scheduler_name,
        "noise_schedule": sampling.noise_schedule,
        "timestep_spacing": sampling.timestep_spacing,
        "logsnr_shift": sampling.logsnr_shift,
        "cfg_cutoff": sampling.cfg_cutoff,
        "sampler": sampler,
        "schedule_type": schedule_type,
        "device": engine.runtime.device.type,
        "dtype": engine.runtime.dtype_name,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }


def run_txt2img(engine: Engine, request: Txt2ImgRequest, reporter: Reporter | None = None) -> RunSummary:
    reporter = reporter or SilentReporter()
    if request.count < 1:
        raise UsageError(f"--count {request.count}: must be at least 1")
    if request.batch_size < 1:
        raise UsageError(f"--batch-size {request.batch_size}: must be at least 1")
    if not request.prompts:
        raise UsageError("no prompt given (pass PROMPT or --prompt-file)")
    seed = check_seed(request.seed)
    jobs = plan_jobs(request.prompts, request.count, seed)
    plan = output.OutputPlan.from_option(request.output, len(jobs), request.name_pattern)
    jobs, share = my_share(jobs, request.shard)
    scheduler_name = engine.use_scheduler(request.sampling)
    record0 = base_record(engine, "txt2img", request.sampling, scheduler_name)
    summary = RunSummary()
    started = time.perf_counter()

    pending = []
    for job in jobs:
        target = plan.target(index=job.index, seed=job.seed, prompt=job.prompt)
        if target is not None and target.exists() and request.skip_existing:
            result = ImageResult(str(target), job.seed, {}, skipped=True)
            summary.skipped.append(result)
            reporter.image_done(result)
            continue
        if target is not None and target.exists() and not request.overwrite and plan.kind != "file":
            summary.failed.append((str(target), "already exists (pass --overwrite to replace it, or --skip-existing)"))
            reporter.image_failed(str(target), summary.failed[-1][1])
            continue
        pending.append((job, target))
    if plan.kind == "file" and pending:
        output.refuse_existing(pending[0][1], request.overwrite)

    reporter.start(len(pending), request.sampling.steps)
    for start in range(0, len(pending), request.batch_size):
        batch = pending[start : start + request.batch_size]
        batch_jobs = [job for job, _ in batch]
        images = engine.txt2img(batch_jobs, request.sampling, on_step=reporter.step)
        for position, ((job, target), image) in enumerate(zip(batch, images)):
            record = dict(record0, prompt=job.prompt, negative_prompt=job.negative_prompt, seed=job.seed, index=job.index, shard=share)
            record["batch"] = {
                "size": len(batch_jobs),
                "position": position,
                "prompts": [j.prompt for j in batch_jobs],
                "negative_prompts": [j.negative_prompt for j in batch_jobs],
                "seeds": [j.seed for j in batch_jobs],
            }
            try:
                output.write_bytes(output.encode_png(image, metadata.png_text(record)), target, overwrite=request.overwrite)
            except ScumbleError as exc:
                summary.failed.append((str(target), str(exc)))
                reporter.image_failed(str(target), str(exc))
                continue
            result = ImageResult(str(target) if target else None, job.seed, record)
            summary.written.append(result)
            reporter.image_done(result)
    summary.seconds = time.perf_counter() - started
    return summary


def read_record(path: Path, task: str) -> dict:
    record = metadata.read_image_metadata(path)["record"]
    if not record:
        raise ScumbleError(f"{path}: carries no scumble record, so it cannot be replayed (A1111 parameters alone do not pin the batch)")
    if record.get("task") != task:
        raise UsageError(f"{path}: was made by {record.get('task')}; replay it with scumble {record.get('task')} --replay")
    return record


def check_same_model(record: dict, engine: Engine, path: Path) -> None:
    """Replaying on other weights would silently give another picture; say which flags to pass instead."""
    made_with = record.get("model", {})
    if made_with.get("hash") and engine.model_hash and made_with["hash"] != engine.model_hash:
        raise UsageError(f"{path}: was made with model {made_with.get('name')} (hash {made_with['hash']}), not {engine.source.name} (hash {engine.model_hash}); pass --model")
    if record.get("dtype") and record["dtype"] != engine.runtime.dtype_name:
        raise UsageError(f"{path}: was made in {record['dtype']}, and this run would use {engine.runtime.dtype_name}; pass --dtype {record['dtype']}")
    if record.get("vae", "") != engine.vae_name:
        wanted = record.get("vae", "")
        raise UsageError(f"{path}: was made with " + (f"--vae {wanted}" if wanted else "the model's own autoencoder") + "; pass " + (f"--vae {wanted}" if wanted else "no --vae"))


def replay_request(record: dict, output_option: str | None, overwrite: bool) -> Txt2ImgRequest:
    """The request that regenerates a txt2img image, pixel for pixel, from its JSON record."""
    batch = record.get("batch") or {"size": 1, "position": 0, "prompts": [record["prompt"]], "negative_prompts": [record.get("negative_prompt", "")], "seeds": [record["seed"]]}
    sampling = Sampling(record["steps"], record["cfg"], record["width"], record["height"], record["scheduler"], record.get("noise_schedule", "default"), record.get("timestep_spacing", ""), record.get("logsnr_shift", 0.0), record.get("cfg_cutoff", 0.0))
    return Txt2ImgRequest(
        prompts=tuple(zip(batch["prompts"], batch["negative_prompts"])),
        sampling=sampling,
        count=1,
        seed=batch["seeds"][0],
        batch_size=batch["size"],
        output=output_option,
        overwrite=overwrite,
    )


def replay(engine: Engine, path: Path, output_option: str | None, overwrite: bool, reporter: Reporter | None = None, task: str = "txt2img") -> RunSummary:
    """Regenerate the recorded batch exactly and write the one image that `path` holds."""
    reporter = reporter or SilentReporter()
    record = read_record(path, task)
    check_same_model(record, engine, path)
    if task != "txt2img":
        from .edit import replay_edit

        return replay_edit(engine, path, record, output_option, overwrite, reporter)
    request = replay_request(record, output_option, overwrite)
    batch = record.get("batch") or {"position": 0, "seeds": [record["seed"]]}
    jobs = [ImageJob(p, n, s, i) for i, ((p, n), s) in enumerate(zip(request.prompts, batch["seeds"]))]
    plan = output.OutputPlan.from_option(output_option, 1)
    target = plan.target(index=record.get("index", 0), seed=record["seed"], prompt=record["prompt"])
    output.refuse_existing(target, overwrite)
    engine.use_scheduler(request.sampling)
    reporter.start(1, request.sampling.steps)
    started = time.perf_counter()
    images = engine.txt2img(jobs, request.sampling, on_step=reporter.step)
    image = images[batch["position"]]
    new_record = dict(record, replayed_from=str(path))
    output.write_bytes(output.encode_png(image, metadata.png_text(new_record)), target, overwrite=overwrite)
    result = ImageResult(str(target) if target else None, record["seed"], new_record)
    reporter.image_done(result)
    return RunSummary(written=[result], seconds=time.perf_counter() - started)

