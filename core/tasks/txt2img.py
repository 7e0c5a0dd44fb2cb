"""txt2img as a task of the runner: items are prompts x count, named by the --name pattern."""

from __future__ import annotations

from ..errors import UsageError
from ..images import pixels as px
from ..records import output
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from . import control, hires
from .control import Controls
from .edit import processing_size
from .items import Item, Prepared

MAX_SEED = 2**32 - 1


class Txt2Img:
    name = "txt2img"

    def __init__(self):
        self.controls: Controls | None = None

    def items(self, request: ImageRequest) -> tuple[list[Item], list[tuple[str, str]]]:
        """Every image of the run, in order: image i gets seed + i (A1111's convention), or its recorded seed on replay."""
        self.controls = Controls(request) if request.control is not None else None
        if request.replay is not None:
            replay = request.replay
            subseeds = replay.subseeds or (None,) * len(replay.seeds)
            items = [Item(i, seed, prompt, negative, f"image {i}", write=i == replay.position, subseed=sub) for i, (seed, sub, (prompt, negative)) in enumerate(zip(replay.seeds, subseeds, request.prompts))]
            return items, []
        variation = request.sampling.subseed_strength > 0
        items = []
        for prompt, negative in request.prompts:
            for _ in range(request.count):
                index = len(items)
                # A1111: with a variation, every image keeps the one seed and steps through subseeds instead
                seed = request.seed if variation else (request.seed + index) % (MAX_SEED + 1)
                subseed = (request.subseed + index) % (MAX_SEED + 1) if variation else None
                items.append(Item(index, seed, prompt, negative, f"image {index}", subseed=subseed))
        return items, []

    def assign_targets(self, request: ImageRequest, items: list[Item]) -> None:
        if request.replay is not None:
            record = request.replay.record
            plan = output.OutputPlan.from_option(request.output.output, 1)
            chosen = items[request.replay.position]
            chosen.target = plan.target(index=record.get("index", 0), seed=chosen.seed, prompt=chosen.prompt)
            return
        plan = output.OutputPlan.from_option(request.output.output, len(items), request.output.name_pattern)
        owners: dict = {}
        for item in items:
            item.target = plan.target(index=item.index, seed=item.seed, prompt=item.prompt)
            if plan.kind == "folder":
                if item.target in owners:
                    first = owners[item.target]
                    raise UsageError(f"--name {request.output.name_pattern!r}: images {first} and {item.index} would both be written to {item.target.name}; add {{index}} or {{seed}} to the pattern")
                owners[item.target] = item.index

    def record_fields(self, request: ImageRequest) -> dict:
        return hires.record_fields(request) if request.hires else {}

    def prepare(self, engine: Engine, request: ImageRequest, item: Item) -> Prepared:
        if self.controls is None:
            return Prepared(item, engine.size(request.sampling.width, request.sampling.height))
        sources = self.controls.sources(request, item)
        first = sources[0][0]
        # With a control image the picture takes its shape (as --width/--height do an input's in img2img).
        size = processing_size(engine, request, first.shape[1], first.shape[0], item.label)
        prep = Prepared(item, size)
        self.controls.prepare(prep, sources, lambda image: px.resize(image, size[0], size[1], request.control.resize))
        if request.hires:
            # The second pass is guided at its own size: each control image is fitted and preprocessed again
            # there (an edge map drawn at the final size, not a blurred enlargement of the small one).
            hires.check_size(engine, request, size)
            final = hires.target(engine, request, size)
            prep.control_hires = self.controls.preprocessed(prep, sources, lambda image: px.resize(image, final[0], final[1], request.control.resize))
        return prep

    def generate(self, engine: Engine, request: ImageRequest, batch: list[Prepared], on_step) -> list:
        if request.hires:
            return hires.generate(engine, request, [p.item.job for p in batch], on_step, control.call(request, batch), control.call(request, batch, hires=True), batch[0].size)
        return engine.txt2img([p.item.job for p in batch], request.sampling, on_step=on_step, control=control.call(request, batch), size=batch[0].size)

    def finish(self, request: ImageRequest, prep: Prepared, image):
        return image
