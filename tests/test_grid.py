"""scumble grid end to end on the tiny random model: cells, their records, the sheet, the axes' checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import pixels
from PIL import Image
from scumble.core.tasks.grid import GRID_KEY, PAD


def _record(path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text["scumble"])


def _grid_info(path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[GRID_KEY])


def _has_ink(region: np.ndarray) -> bool:
    return bool((region.min(axis=-1) < 128).any())


def test_two_by_two_grid_sheet_and_cells(run_cli, tiny_sd, tmp_path):
    result = run_cli("grid", "a red circle", "--model", tiny_sd, "--x", "scheduler=euler,ddim", "--y", "steps=1,2", "-W", 32, "-H", 32, "--seed", 5, "-o", "grid.png")
    assert result.exit_code == 0, result.stderr
    cells = tmp_path / "grid.cells"
    assert sorted(p.name for p in cells.iterdir()) == ["x0-y0-z0.png", "x0-y1-z0.png", "x1-y0-z0.png", "x1-y1-z0.png"]
    for x, scheduler in enumerate(("euler", "ddim")):
        for y, steps in enumerate((1, 2)):
            record = _record(cells / f"x{x}-y{y}-z0.png")
            assert (record["scheduler"], record["steps"], record["seed"], record["prompt"]) == (scheduler, steps, 5, "a red circle")

    sheet = pixels(tmp_path / "grid.png")
    info = _grid_info(tmp_path / "grid.png")
    assert [(a["axis"], a["option"], a["values"]) for a in info["axes"]] == [("x", "scheduler", ["euler", "ddim"]), ("y", "steps", ["1", "2"])]
    boxes = {(c["x"], c["y"]): c["box"] for c in info["cells"]}
    for c in info["cells"]:  # every cell sits on the sheet pixel for pixel
        left, top, w, h = c["box"]
        assert (w, h) == (32, 32)
        assert np.array_equal(sheet[top : top + h, left : left + w], pixels(tmp_path / c["path"]))
        assert c["seconds"] > 0 and _has_ink(sheet[top + h : top + h + 20, left - 10 : left + w + 10])  # its time under it

    # columns by x, rows by y; each column is wider than a cell, because "scheduler=euler" is
    slot_w, slot_h = boxes[1, 0][0] - boxes[0, 0][0], boxes[0, 1][1] - boxes[0, 0][1]
    assert boxes[0, 1][0] == boxes[0, 0][0] and boxes[1, 1][1] == boxes[0, 1][1]
    assert slot_w > 32 + 2 * PAD and slot_h > 32 + PAD
    row_header = boxes[0, 0][0] - (slot_w - 32) // 2
    header = boxes[0, 0][1] - PAD
    assert row_header > 0 and header > 0
    assert sheet.shape[:2] == (header + 2 * slot_h, row_header + 2 * slot_w)
    assert _has_ink(sheet[:header, row_header:]) and _has_ink(sheet[header:, :row_header])  # column and row labels
    assert not _has_ink(sheet[:header, :row_header])


def test_a_cell_is_the_image_txt2img_makes(run_cli, tiny_sd, tmp_path):
    assert run_cli("grid", "a blue star", "--model", tiny_sd, "--x", "scheduler=euler,dpmpp_2m", "--steps", 3, "--cfg", 5, "--seed", 9, "-o", "g.png", "-q").exit_code == 0
    result = run_cli("txt2img", "a blue star", "--model", tiny_sd, "--scheduler", "dpmpp_2m", "--steps", 3, "--cfg", 5, "--seed", 9, "-W", 32, "-H", 32, "-o", "single.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "g.cells" / "x1-y0-z0.png"), pixels(tmp_path / "single.png"))
    assert not np.array_equal(pixels(tmp_path / "g.cells" / "x0-y0-z0.png"), pixels(tmp_path / "single.png"))


def test_prompt_search_and_replace_and_json(run_cli, tiny_sd, tmp_path):
    result = run_cli("grid", "a red circle", "-n", "red edges", "--model", tiny_sd, "--x", "prompt=red/blue", "--steps", 1, "--seed", 2, "-o", "p.png", "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["grid"] == "p.png" and summary["cells_dir"] == "p.cells"
    assert [c["values"] for c in summary["cells"]] == [{"prompt": "red"}, {"prompt": "blue"}]
    records = [_record(tmp_path / c["path"]) for c in summary["cells"]]
    assert [(r["prompt"], r["negative_prompt"]) for r in records] == [("a red circle", "red edges"), ("a blue circle", "blue edges")]
    assert all(c["seconds"] > 0 for c in summary["cells"]) and {r["seed"] for r in records} == {2}


def test_seed_range_with_a_z_axis(run_cli, tiny_sd, tmp_path):
    result = run_cli("grid", "a green square", "--model", tiny_sd, "--x", "seed=1-3", "--z", "cfg=1,7", "--steps", 1, "-o", "s.png")
    assert result.exit_code == 0, result.stderr
    cells = tmp_path / "s.cells"
    assert [_record(cells / f"x{x}-y0-z0.png")["seed"] for x in range(3)] == [1, 2, 3]
    assert [_record(cells / f"x0-y0-z{z}.png")["cfg"] for z in range(2)] == [1.0, 7.0]
    assert not np.array_equal(pixels(cells / "x0-y0-z0.png"), pixels(cells / "x1-y0-z0.png"))
    info = _grid_info(tmp_path / "s.png")
    tops = {c["z"]: c["box"][1] for c in info["cells"]}
    sheet = pixels(tmp_path / "s.png")
    assert tops[1] > tops[0] + 32 and sheet.shape[0] > tops[1] + 32
    assert _has_ink(sheet[tops[1] - 40 : tops[1] - 20, : 60])  # the second block's "cfg=7" band


@pytest.mark.parametrize(
    "axis, message",
    [
        ("steps=0", "error: --x steps=0: must be at least 1"),
        ("steps=10,abc", "error: --x steps=abc: must be a whole number"),
        ("width=33", "error: --x width=33: must be a positive multiple of 8"),
        ("scheduler=euler,nope", "error: --x scheduler: unknown scheduler 'nope'"),
        ("timestep_spacing=sideways", "error: --x timestep_spacing: unknown spacing 'sideways'"),
        ("bogus=1,2", "error: --x bogus: not an option a grid can vary; an axis takes cfg, cfg_cutoff, clip_skip"),
        ("model=other", "error: --x model: not an option a grid can vary"),
        ("steps", "error: --x steps: expected OPTION=V1,V2,..."),
        ("seed=5-1 (+1)", "error: --x seed=5-1 (+1): the range holds no values"),
        ("prompt=green,blue", "error: --x prompt: 'green' is not in the prompt or the negative prompt"),
    ],
)
def test_bad_axis_is_one_line_and_writes_nothing(run_cli, tiny_sd, tmp_path, axis, message):
    result = run_cli("grid", "a red circle", "--model", tiny_sd, "--x", axis, "--steps", 1, "-o", "bad.png")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "bad.cells").exists()


def test_more_than_100_cells_is_refused(run_cli, tiny_sd, tmp_path):
    for axes in (("--x", "steps=1-11", "--y", "seed=1-10"), ("--x", "seed=0-4000000000")):
        result = run_cli("grid", "a cat", "--model", tiny_sd, *axes, "-o", "big.png")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "at most 100" in result.stderr, result.stderr
    assert list(tmp_path.glob("big*")) == []


def test_existing_grid_or_cell_is_kept_without_overwrite(run_cli, tiny_sd, tmp_path):
    common = ("grid", "a cat", "--model", tiny_sd, "--x", "steps=1,2", "--seed", 1, "-o", "g.png", "-q")
    (tmp_path / "g.cells").mkdir()
    (tmp_path / "g.cells" / "x1-y0-z0.png").write_bytes(b"precious")
    result = run_cli(*common)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "x1-y0-z0.png: already exists" in result.stderr
    assert (tmp_path / "g.cells" / "x1-y0-z0.png").read_bytes() == b"precious" and not (tmp_path / "g.png").exists()
    assert not (tmp_path / "g.cells" / "x0-y0-z0.png").exists()
    assert run_cli(*common, "--overwrite").exit_code == 0
    assert _record(tmp_path / "g.cells" / "x1-y0-z0.png")["steps"] == 2
    result = run_cli(*common)
    assert result.exit_code == 1 and "g.png: already exists" in result.stderr


def test_a_combination_the_model_refuses_is_found_before_any_cell(run_cli, tiny_sd, tmp_path):
    result = run_cli("grid", "a cat", "--model", tiny_sd, "--x", "scheduler=euler,ddim", "--y", "noise_schedule=default,cosine", "--steps", 1, "-o", "m.png")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: cell x1-y1-z0 (scheduler=ddim, noise_schedule=cosine): --scheduler ddim: takes neither custom sigmas")
    assert list(tmp_path.glob("m*")) == []
