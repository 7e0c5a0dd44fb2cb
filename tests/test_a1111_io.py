"""A1111 images out: JPEG and WebP carry A1111's parameters (EXIF UserComment) and our record (XMP)."""

from __future__ import annotations

import numpy as np
import pytest
from sd_parsers import ParserManager

from helpers import pixels


@pytest.mark.parametrize("name", ["x.jpg", "x.webp"])
def test_jpeg_and_webp_carry_parameters_that_sd_parsers_reads_and_a_record_that_replays(run_cli, tiny_sd, tmp_path, name):
    made = run_cli("txt2img", "a (red:1.2) circle", "--model", tiny_sd, "--steps", 2, "--seed", 11, "-W", 32, "-H", 32, "--quality", 80, "-o", name)
    assert made.exit_code == 0, made.stderr
    info = ParserManager().parse(tmp_path / name)
    assert info is not None
    sampler = info.samplers[0]
    assert sampler.prompts[0].value == "a (red:1.2) circle"
    assert str(sampler.parameters.get("steps")) == "2" and str(sampler.parameters.get("seed", info.metadata.get("seed", ""))) in ("11", "")
    again = run_cli("txt2img", "--replay", name, "--model", tiny_sd, "-o", "again" + name[1:])
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / name), pixels(tmp_path / ("again" + name[1:])))
    info_line = run_cli("info", name).stdout
    assert "Steps: 2" in info_line and "replay with: scumble txt2img --replay" in info_line


def test_quality_changes_the_file_and_is_checked(run_cli, tiny_sd, tmp_path):
    for quality in (20, 95):
        assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--seed", 1, "-W", 64, "-H", 64, "--quality", quality, "-o", f"q{quality}.jpg").exit_code == 0
    assert (tmp_path / "q20.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    bad = run_cli("txt2img", "x", "--model", tiny_sd, "--quality", 0, "-o", "q.jpg")
    assert bad.exit_code == 2 and "--quality 0: must be at least 1" in bad.stderr
