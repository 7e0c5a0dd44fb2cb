"""A1111-compatible metadata: what we write, read back by our parser and by a third-party one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image
from sd_parsers import ParserManager

from scumble.core.records import metadata

RECORD = {
    "prompt": "a red circle, on blue: bright",
    "negative_prompt": "blurry, lowres",
    "steps": 20,
    "sampler": "DPM++ 2M",
    "schedule_type": "Karras",
    "cfg": 7.0,
    "seed": 965400086,
    "width": 512,
    "height": 768,
    "model": {"name": "my, model", "hash": "45dee52b00"},
    "strength": 0.75,
    "version": "0.1.0",
}


def test_parameters_text_layout():
    text = metadata.a1111_parameters(RECORD)
    lines = text.split("\n")
    assert lines[0] == "a red circle, on blue: bright"
    assert lines[1] == "Negative prompt: blurry, lowres"
    assert lines[2] == 'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 965400086, Size: 512x768, Model hash: 45dee52b00, Model: "my, model", Denoising strength: 0.75, Version: scumble 0.1.0'


def test_empty_negative_prompt_line_is_omitted_and_empty_values_dropped():
    text = metadata.a1111_parameters({**RECORD, "negative_prompt": "", "schedule_type": None, "strength": None})
    assert "Negative prompt" not in text and "Schedule type" not in text and "Denoising strength" not in text
    assert len(text.split("\n")) == 2


def test_round_trip_through_our_parser():
    parsed = metadata.parse_a1111(metadata.a1111_parameters(RECORD))
    assert parsed["prompt"] == RECORD["prompt"] and parsed["negative_prompt"] == RECORD["negative_prompt"]
    assert parsed["Model"] == "my, model" and parsed["Seed"] == "965400086" and parsed["Size"] == "512x768"


def test_sd_parsers_reads_what_we_write(tmp_path):
    image = Image.new("RGB", (8, 8))
    from scumble.core.records.output import encode_png

    path = tmp_path / "meta.png"
    record = {**RECORD, "model": {"name": "my-model", "hash": "45dee52b00"}}  # sd-parsers does not unquote "a, b" values; A1111 does
    path.write_bytes(encode_png(image, metadata.png_text(record)))
    info = ParserManager().parse(path)
    assert info is not None and info.generator.value == "AUTOMATIC1111"
    sampler = info.samplers[0]
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters["steps"] == "20" and sampler.parameters["seed"] == "965400086" and sampler.parameters["cfg_scale"] == "7"
    assert sampler.model.name == "my-model" and sampler.model.hash == "45dee52b00"
    assert [p.value for p in sampler.prompts] == [RECORD["prompt"]]
    assert [p.value for p in sampler.negative_prompts] == [RECORD["negative_prompt"]]
    assert json.loads(Image.open(path).text["scumble"])["seed"] == 965400086


def test_unicode_prompt_survives(tmp_path):
    from scumble.core.records.output import encode_png

    record = {**RECORD, "prompt": "un cercle rouge — 赤い円"}
    path = tmp_path / "u.png"
    path.write_bytes(encode_png(Image.new("RGB", (8, 8)), metadata.png_text(record)))
    assert metadata.read_image_metadata(path)["record"]["prompt"] == "un cercle rouge — 赤い円"
    assert ParserManager().parse(path).samplers[0].prompts[0].value == "un cercle rouge — 赤い円"


def test_info_command(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "a star", "--model", tiny_sd, "--steps", 1, "--seed", 4, "-o", "i.png").exit_code == 0
    shown = run_cli("info", "i.png")
    assert shown.exit_code == 0 and shown.stdout.startswith("a star\nSteps: 1,")
    as_json = json.loads(run_cli("info", "i.png", "--json").stdout)
    assert as_json["parameters"]["Seed"] == "4" and as_json["record"]["seed"] == 4


@pytest.mark.parametrize("content,message", [(None, "no such file"), (b"not an image", "not a readable image")])
def test_info_on_bad_files(run_cli, tmp_path, content, message):
    if content is not None:
        (tmp_path / "bad.png").write_bytes(content)
    result = run_cli("info", "bad.png")
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_info_on_image_without_metadata(run_cli, tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    result = run_cli("info", "plain.png")
    assert result.exit_code == 1 and "carries no generation metadata" in result.stderr


def test_help_does_not_import_torch():
    code = "import sys\nfrom typer.testing import CliRunner\nfrom scumble.cli.app import app\n" \
        "r = CliRunner().invoke(app, ['txt2img', '--help'])\nassert r.exit_code == 0, r.output\n" \
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_listings(run_cli):
    schedulers = run_cli("schedulers")
    assert schedulers.exit_code == 0 and len([line for line in schedulers.stdout.splitlines() if line.startswith("  ")]) == 16 + 9  # 16 samplers, 9 noise schedules
    assert "DPM++ 2M SDE" in schedulers.stdout and "karras" in schedulers.stdout
    presets = json.loads(run_cli("presets", "--json").stdout)
    assert {"fast", "quality", "turbo", "lcm"} <= {p["name"] for p in presets}
    assert next(p for p in presets if p["name"] == "turbo")["settings"]["steps"] == 1
