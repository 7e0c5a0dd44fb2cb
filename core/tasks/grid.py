"""A comparison grid (A1111's X/Y/Z plot): one option varied along each axis, one normal image per cell, one sheet.

Every cell is an ordinary txt2img request built by the same layered builder as `scumble txt2img`
(so an axis value is checked exactly as its flag would be) and made by the one runner (so each cell
carries its own record). The sheet is drawn from the written cells and carries the axes as JSON.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from ... import __version__
from ..errors import ScumbleError, UsageError
from ..records import output
from ..request import build
from ..request.build import Layer
from ..request.options import CONTROL, MODEL, OUTPUT, Int, Invalid, Option, Seed, UnknownChoice, check_text, options_for
from ..request.types import ImageRequest

MAX_CELLS = 100
AXES = ("x", "y", "z")
PROMPT = "prompt"  # A1111's Prompt S/R: not an option of txt2img, so handled here
GRID_KEY = "scumble_grid"  # the sheet's PNG text chunk
NOT_ON_AN_AXIS = {"count", "batch_size"}  # each cell is exactly one image
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)(?:\s*\(\s*([+-]?\d+)\s*\))?$")  # 1-4, or A1111's 1-9 (+2)


def axis_options() -> dict[str, Option]:
    """What can vary along an axis: every txt2img option that shapes the image, not where or on what it runs.

    ControlNet settings are not axes yet: they are lists (one per ControlNet), which an axis's CSV values cannot give."""
    return {name: o for name, o in options_for("txt2img").items() if o.panel not in (MODEL, OUTPUT, CONTROL) and name not in NOT_ON_AN_AXIS}


def _aliases() -> dict[str, str]:
    """Option names and their long flags (--sampler, --guidance-scale), as an axis may name them."""
    names = {PROMPT: PROMPT}
    for name, option in axis_options().items():
        names[name] = name
        names.update({flag[2:].replace("-", "_"): name for flag in option.flags if flag.startswith("--")})
    return names


@dataclass(frozen=True)
class Axis:
    letter: str
    option: str
    values: tuple[str, ...]  # as typed; the builder converts each again per cell
    search: str = ""  # prompt axis: the text each value replaces

    @property
    def flag(self) -> str:
        return f"--{self.letter}"

    def label(self, index: int) -> str:
        return f"{self.option}={self.values[index]}"


@dataclass(frozen=True)
class Cell:
    position: tuple[int, int, int]  # x, y, z
    values: dict[str, Any]  # option -> value, as checked
    request: ImageRequest
    path: Path

    @property
    def name(self) -> str:
        return "-".join(f"{a}{i}" for a, i in zip(AXES, self.position))


@dataclass(frozen=True)
class GridPlan:
    path: Path
    cells_dir: Path
    axes: tuple[Axis, ...]
    cells: tuple[Cell, ...]
    base: ImageRequest  # the request every cell starts from: the model, the shared seed, --overwrite

    @property
    def shape(self) -> tuple[int, int, int]:
        counts = {axis.letter: len(axis.values) for axis in self.axes}
        return tuple(counts.get(letter, 1) for letter in AXES)


@dataclass
class CellResult:
    cell: Cell
    seconds: float
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the cell sits on the sheet: left, top, width, height


@dataclass
class GridResult:
    plan: GridPlan
    cells: list[CellResult]
    seconds: float


# ---------------------------------------------------------------- parsing the axes


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _split(flag: str, text: str) -> tuple[str, list[str]]:
    name, sep, values = text.partition("=")
    key = name.strip().lower().replace("-", "_")
    if not sep or not key:
        raise UsageError(f"{flag} {_shown(text)}: expected OPTION=V1,V2,... (e.g. {flag} steps=10,20,30)")
    option = _aliases().get(key)
    if option is None:
        raise UsageError(f"{flag} {_shown(name.strip())}: not an option a grid can vary; an axis takes {', '.join(sorted(axis_options()))} or prompt (search/replace)")
    if not values.strip():
        raise UsageError(f"{flag} {option}: give at least one value")
    # CSV as A1111 reads axes: a value with a comma (a noise schedule, a negative prompt) goes in double quotes.
    try:
        items = [v.strip() for v in next(csv.reader([values], skipinitialspace=True), [])]
    except csv.Error as exc:
        raise UsageError(f"{flag} {option}: cannot split the values ({exc})") from None
    return option, items


def _range(option: Option, item: str) -> tuple[int, int, int] | None:
    match = _RANGE.match(item)
    if not match or not isinstance(option.kind, (Int, Seed)):
        return None
    start, stop = int(match[1]), int(match[2])
    return start, stop, int(match[3]) if match[3] else (1 if stop >= start else -1)


def _size(span: tuple[int, int, int] | None) -> int:
    if span is None:
        return 1
    start, stop, step = span
    return 0 if step == 0 or (stop - start) * step < 0 else abs(stop - start) // abs(step) + 1


def _expand(flag: str, option: Option, items: list[str]) -> list[str]:
    """Ranges of whole numbers (1-4 inclusive, or 1-9 (+2)), counted before they are made: 1-4000000000 is refused, not built."""
    spans = [_range(option, item) for item in items]
    sizes = [_size(span) for span in spans]
    if 0 in sizes:
        raise UsageError(f"{flag} {option.name}={_shown(items[sizes.index(0)])}: the range holds no values")
    if sum(sizes) > MAX_CELLS:
        raise UsageError(f"{flag} {option.name}: {sum(sizes):,} values; a grid has at most {MAX_CELLS} cells")
    out = []
    for item, span, size in zip(items, spans, sizes):
        out.extend([str(span[0] + k * span[2]) for k in range(size)] if span else [item])
    return out


def check_value(axis: Axis, option: Option, raw: str) -> Any:
    """The option's own Kind, as for its flag; the message names the axis: `--x steps=0: must be at least 1`."""
    try:
        return option.kind.convert(raw)
    except UnknownChoice as exc:
        raise UsageError(f"{axis.flag} {option.name}: {exc}") from None
    except Invalid as exc:
        raise UsageError(f"{axis.flag} {option.name}={_shown(raw)}: {exc}") from None
    except UsageError as exc:  # a library check (scheduler, noise schedule) names the flag; name the axis instead
        message = str(exc)
        if message.startswith(option.flag):
            message = message[len(option.flag):].lstrip(":").lstrip()
        raise UsageError(f"{axis.flag} {option.name}: {message}") from None


def _prompt_axis(letter: str, text: str, items: list[str]) -> Axis:
    """`prompt=S,R1,R2` (A1111's form) or `prompt=S/R1,R2`: the first value is the search text and its own cell."""
    _, _, raw = text.partition("=")
    if "/" in items[0] and not raw.lstrip().startswith('"'):
        search, _, first = items[0].partition("/")
        items = [search.strip(), first.strip(), *items[1:]]
    axis = Axis(letter, PROMPT, tuple(items), items[0])
    if not axis.search:
        raise UsageError(f"--{letter} prompt: the first value is the text to replace, and it is empty")
    if len(items) > MAX_CELLS:
        raise UsageError(f"--{letter} prompt: {len(items):,} values; a grid has at most {MAX_CELLS} cells")
    for item in items:
        try:
            check_text(item)
        except Invalid as exc:
            raise UsageError(f"--{letter} prompt={_shown(item)}: {exc}") from None
    return axis


def parse_axis(letter: str, text: str) -> Axis:
    """One `--x OPTION=V1,V2,...`, every value checked by its option's Kind."""
    flag = f"--{letter}"
    name, items = _split(flag, text)
    if name == PROMPT:
        return _prompt_axis(letter, text, items)
    option = axis_options()[name]
    axis = Axis(letter, name, tuple(_expand(flag, option, items)))
    for raw in axis.values:
        check_value(axis, option, raw)
    return axis


def parse_axes(texts: dict[str, str | None]) -> tuple[Axis, ...]:
    given = {letter: text for letter, text in texts.items() if text is not None}
    if "x" not in given:
        raise UsageError("give --x OPTION=V1,V2,... (and --y, --z for more axes)")
    axes = tuple(parse_axis(letter, given[letter]) for letter in AXES if letter in given)
    seen: dict[str, str] = {}
    for axis in axes:
        if axis.option in seen:
            raise UsageError(f"{axis.option} is on both {seen[axis.option]} and {axis.flag}; an option varies along one axis")
        seen[axis.option] = axis.flag
    cells = math.prod(len(axis.values) for axis in axes)
    if cells > MAX_CELLS:
        raise UsageError(f"{' x '.join(str(len(a.values)) for a in axes)} = {cells:,} cells; a grid has at most {MAX_CELLS}")
    return axes


# ---------------------------------------------------------------- the plan: one request per cell


def cells_folder(path: Path) -> Path:
    return path.with_suffix(".cells")


def _grid_path(output_option: str | None) -> Path:
    if not output_option or output_option == "-":
        raise UsageError("-o: a grid is written as a .png file, with its cells in a folder beside it; name a .png file")
    path = Path(output_option).expanduser()
    if path.suffix.lower() != ".png" or output_option.endswith(("/",)) or path.is_dir():
        raise UsageError(f"-o {output_option}: a grid is written as one .png file (its cells go in {path.stem}.cells/ beside it); name a .png file")
    if output.is_special(path):
        raise UsageError(f"-o {output_option}: a grid needs a regular file, with its cells in a folder beside it")
    return path


def _cell_request(prompt: str, base_layers: Sequence[Layer], axes: tuple[Axis, ...], index: tuple[int, ...], forced: dict) -> tuple[ImageRequest, dict]:
    """The cell's request: the run's layers, then one layer per axis (named by the axis in messages), then the grid's own."""
    chosen = {axis.option: axis.values[i] for axis, i in zip(axes, index)}
    axis_layers = [Layer(f"{axis.flag} {axis.label(i)}", {axis.option: axis.values[i]}) for axis, i in zip(axes, index) if axis.option != PROMPT]
    layers = [*base_layers, *axis_layers, Layer("grid", forced)]
    request = build.image_request("txt2img", layers, prompts=[prompt])
    search = next((axis.search for axis in axes if axis.option == PROMPT), None)
    if search is not None:
        value = chosen[PROMPT]
        negative = request.prompts[0][1].replace(search, value)
        layers[-1] = Layer("grid", forced | {"negative_prompt": negative})
        request = build.image_request("txt2img", layers, prompts=[prompt.replace(search, value)])
    values = {k: v if k == PROMPT else axis_options()[k].kind.convert(v) for k, v in chosen.items()}
    return request, values


def plan(prompt: str, axis_texts: dict[str, str | None], base_layers: Sequence[Layer], output_option: str | None) -> GridPlan:
    """Every cell's request, built and checked before the model loads; nothing already there is replaced without --overwrite."""
    axes = parse_axes(axis_texts)
    path = _grid_path(output_option)
    grid_defaults = {"count": 1, "batch_size": 1, "shard": None, "skip_existing": False}
    base = build.image_request("txt2img", [*base_layers, Layer("grid", grid_defaults)], prompts=[prompt])
    _check_search(axes, base)
    folder = cells_folder(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: is a file, and the grid's cells go in a folder of that name")
    seeded = any(axis.option == "seed" for axis in axes)
    cells = []
    for index in product(*(range(len(axis.values)) for axis in axes)):
        position = tuple(dict(zip((a.letter for a in axes), index)).get(letter, 0) for letter in AXES)
        target = folder / ("-".join(f"{a}{i}" for a, i in zip(AXES, position)) + ".png")
        forced = grid_defaults | {"output": str(target)} | ({} if seeded else {"seed": base.seed})
        request, values = _cell_request(prompt, base_layers, axes, index, forced)
        cells.append(Cell(position, values, request, target))
    cells.sort(key=lambda c: (c.position[2], c.position[1], c.position[0]))
    for existing in (path, *(c.path for c in cells)):
        output.refuse_existing(existing, base.output.overwrite)
    return GridPlan(path, folder, axes, tuple(cells), base)


def _check_search(axes: tuple[Axis, ...], base: ImageRequest) -> None:
    prompt, negative = base.prompts[0]
    for axis in axes:
        if axis.option == PROMPT and axis.search not in prompt and axis.search not in negative:
            raise UsageError(f"{axis.flag} prompt: {_shown(axis.search)!r} is not in the prompt or the negative prompt, so there is nothing to replace")


# ---------------------------------------------------------------- the run


class _CellReporter:
    """One progress bar over the whole grid; a failed cell stops the grid, so it is raised once, not also reported."""

    def __init__(self, inner, cells: int):
        self.inner, self.cells, self.started, self.failure = inner, cells, False, None

    def start(self, total_images: int, steps: int) -> None:
        if not self.started:
            self.started = True
            self.inner.start(self.cells, steps)

    def step(self, done: int, total: int) -> None:
        self.inner.step(done, total)

    def image_done(self, result) -> None:
        self.inner.image_done(result)

    def image_failed(self, label: str, message: str) -> None:
        self.failure = self.failure or message

    def notice(self, message: str) -> None:
        self.inner.notice(message)

    def frame_done(self, index: int, total: int, resumed: bool = False) -> None:
        pass


def run(engine, grid: GridPlan, reporter=None) -> GridResult:
    """Make every cell with the one engine, then draw and write the sheet."""
    from ..records.reporting import SilentReporter
    from . import runner
    from .sharding import launched_processes

    if launched_processes() > 1:
        raise UsageError("a grid is made by one process; run it without accelerate or torchrun")
    _check_on_model(engine, grid)
    started, cells = time.perf_counter(), []
    cell_reporter = _CellReporter(reporter or SilentReporter(), len(grid.cells))
    for cell in grid.cells:
        began = time.perf_counter()
        summary = runner.run(engine, cell.request, cell_reporter)
        if summary.failed or not summary.written:
            raise ScumbleError(f"cell {cell.name}: {cell_reporter.failure or (summary.failed[0][1] if summary.failed else 'no image was made')}")
        cells.append(CellResult(cell, time.perf_counter() - began))
    result = GridResult(grid, cells, 0.0)
    write_sheet(result)
    result.seconds = time.perf_counter() - started
    return result


def _check_on_model(engine, grid: GridPlan) -> None:
    """What only the loaded model can tell (its size limit, its own scheduler), for every cell before the first is made."""
    from .runner import check_size

    tried = set()
    for cell in grid.cells:
        sampling = cell.request.sampling
        where = f"cell {cell.name} ({', '.join(f'{k}={_shown(str(v))}' for k, v in cell.values.items())})"
        key = (sampling.scheduler, sampling.noise_schedule.text, sampling.timestep_spacing)
        try:
            check_size(engine, cell.request)  # the runner's own check, for every cell before the first is made
            if key not in tried:  # a scheduler that cannot follow a noise schedule is refused by the engine, as it would be mid-grid
                tried.add(key)
                engine.use_scheduler(sampling)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None


# ---------------------------------------------------------------- the sheet

FONT_SIZE = 14
PAD = 6
MAX_LABEL = 48  # characters: a long negative prompt on an axis must not make the sheet miles wide
BACKGROUND, INK, FAINT, BAND = (255, 255, 255), (0, 0, 0), (90, 90, 90), (230, 230, 230)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType: the small bitmap font still reads
        return ImageFont.load_default()


def _text(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 3] + "..."


@dataclass(frozen=True)
class Layout:
    line: int  # height of a line of text
    row_header: int  # width of the row labels (0 with no --y)
    band: int  # height of each z block's title (0 with no --z)
    header: int  # height of the column labels
    slot_w: int
    slot_h: int
    cell_w: int
    cell_h: int
    shape: tuple[int, int, int]

    @property
    def block_h(self) -> int:
        return self.band + self.header + self.shape[1] * self.slot_h

    @property
    def size(self) -> tuple[int, int]:
        return self.row_header + self.shape[0] * self.slot_w, self.shape[2] * self.block_h

    def box(self, x: int, y: int, z: int, width: int, height: int) -> tuple[int, int, int, int]:
        left = self.row_header + x * self.slot_w + (self.slot_w - width) // 2
        top = z * self.block_h + self.band + self.header + y * self.slot_h + PAD
        return left, top, width, height


def _labels(grid: GridPlan, letter: str) -> list[str]:
    axis = next((a for a in grid.axes if a.letter == letter), None)
    return [_text(axis.label(i)) for i in range(len(axis.values))] if axis else []


def layout(grid: GridPlan, sizes: list[tuple[int, int]], times: list[str], font) -> Layout:
    """Every column as wide as its widest cell or label, so no label is cut or overlaps its neighbour."""
    width = lambda text: math.ceil(font.getlength(text)) if text else 0
    line = font.getbbox("Ag")[3]
    cell_w, cell_h = max(w for w, _ in sizes), max(h for _, h in sizes)
    texts = _labels(grid, "x") + times
    slot_w = max(cell_w, max(width(t) for t in texts)) + 2 * PAD
    rows = _labels(grid, "y")
    row_header = max(width(t) for t in rows) + 2 * PAD if rows else 0
    band = line + 2 * PAD if _labels(grid, "z") else 0
    return Layout(line, row_header, band, line + 2 * PAD, slot_w, PAD + cell_h + PAD // 2 + line + PAD, cell_w, cell_h, grid.shape)


def draw_sheet(result: GridResult):
    """Cells in columns (x) and rows (y), one block per z value stacked downwards, each cell's time under it."""
    from PIL import Image, ImageDraw

    grid, font = result.plan, _font()
    images = [Image.open(r.cell.path).convert("RGB") for r in result.cells]
    times = [f"{r.seconds:.2f}s" for r in result.cells]
    plan_layout = layout(grid, [im.size for im in images], times, font)
    sheet = Image.new("RGB", plan_layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for r, image, seconds in zip(result.cells, images, times):
        x, y, z = r.cell.position
        r.box = plan_layout.box(x, y, z, *image.size)
        left, top, w, h = r.box
        sheet.paste(image, (left, top))
        draw.text((left + w // 2, top + h + PAD // 2), seconds, fill=FAINT, font=font, anchor="mt")
    _draw_labels(draw, grid, plan_layout, font)
    return sheet


def _draw_labels(draw, grid: GridPlan, at: Layout, font) -> None:
    columns, rows, blocks = _labels(grid, "x"), _labels(grid, "y"), _labels(grid, "z")
    for z in range(grid.shape[2]):
        top = z * at.block_h
        if blocks:
            draw.rectangle((0, top, at.size[0] - 1, top + at.band - 1), fill=BAND)
            draw.text((PAD, top + PAD), blocks[z], fill=INK, font=font)
        for x, label in enumerate(columns):
            draw.text((at.row_header + x * at.slot_w + at.slot_w // 2, top + at.band + PAD), label, fill=INK, font=font, anchor="mt")
        for y, label in enumerate(rows):
            middle = top + at.band + at.header + y * at.slot_h + PAD + at.cell_h // 2
            draw.text((PAD, middle), label, fill=INK, font=font, anchor="lm")


def describe(result: GridResult, relative_to: Path | None = None) -> dict:
    """The axes and every cell, as the sheet's text chunk and --json print them."""
    grid = result.plan
    prompt, negative = grid.base.prompts[0]
    cells = [
        {
            "x": r.cell.position[0], "y": r.cell.position[1], "z": r.cell.position[2],
            "path": str(r.cell.path.relative_to(relative_to)) if relative_to else str(r.cell.path),
            "values": {k: _jsonable(v) for k, v in r.cell.values.items()},
            "seed": r.cell.request.seed,
            "seconds": round(r.seconds, 3),
            "box": list(r.box),
        }
        for r in result.cells
    ]
    axes = [{"axis": a.letter, "option": a.option, "values": list(a.values), **({"search": a.search} if a.option == PROMPT else {})} for a in grid.axes]
    return {"version": __version__, "prompt": prompt, "negative_prompt": negative, "seed": grid.base.seed, "axes": axes, "cells": cells}


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def write_sheet(result: GridResult) -> None:
    grid = result.plan
    sheet = draw_sheet(result)
    text = {GRID_KEY: json.dumps(describe(result, grid.path.parent), sort_keys=True)}
    output.write_bytes(output.encode_png(sheet, text), grid.path, overwrite=grid.base.output.overwrite)

