"""Every door checked: limits, NaN, collisions, replay hashes, no "unexpected", a CLI that behaves like one.

(Hostile image files, metadata and terminal escapes: test_doors_inputs.py. animate's files: test_doors_animate.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import pixels

ROOT = Path(__file__).resolve().parents[1]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts and ".config" not in p.parts}


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "unexpected" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def images(tmp_path):
    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp_path / "in.png")
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    mask.save(tmp_path / "mask.png")
    Image.new("RGB", (1024, 1024), (1, 2, 3)).save(tmp_path / "big.png")
    return tmp_path


M = "MODEL"
LIMITS = [
    # (args, text in the one line, exit code): every number has an upper bound, named in the message
    (["txt2img", "x", "-m", M, "--width", "100000"], "--width 100000: must be 0 (native size) or between 8 and 4096", 2),
    (["txt2img", "x", "-m", M, "--steps", "100000"], "--steps 100000: must be at most 1,000", 2),
    (["txt2img", "x", "-m", M, "--batch-size", "100000"], "--batch-size 100000: must be at most 64", 2),
    (["txt2img", "x", "-m", M, "--count", "1000000000"], "--count 1000000000: must be at most 10,000", 2),
    (["txt2img", "x", "-m", M, "--width", "4096"], "--width 4096: larger than this model can use (at most 128", 2),
    (["txt2img", "x", "-m", M, "--cfg", "nan"], "--cfg nan: must be a finite number", 2),
    (["txt2img", "x", "-m", M, "--cfg", "inf"], "--cfg inf: must be a finite number", 2),
    (["txt2img", "x", "-m", M, "--noise-schedule", "cosine", "--logsnr-shift", "nan"], "--logsnr-shift nan: must be a finite number", 2),
    (["txt2img", "x", "-m", M, "--noise-schedule", "cosine", "--input-scale", "inf"], "--input-scale inf: must be a finite number", 2),
    (["txt2img", "x", "-m", M, "--noise-schedule", "cosine:tau=nan"], "tau=nan must be a finite number", 2),
    (["txt2img", "x", "-m", M, "--name", "{seed.__class__}"], "--name {seed.__class__}: unknown field {seed.__class__}", 2),
    (["txt2img", "x", "-m", M, "--name", "{prompt[0]}"], "unknown field {prompt[0]}", 2),
    (["txt2img", "--prompt-file", "/dev/zero", "-m", M], "--prompt-file /dev/zero: larger than 16 MiB", 1),
    (["img2img", "in.png", "-p", "x", "-m", M, "--strength", "0.00000001", "--exact-steps", "--steps", "20"], "need a 2000000000-step schedule, more than the model's 1000 timesteps", 2),
    (["img2img", "big.png", "-p", "x", "-m", M], "big.png: 1024x1024 would be made at 1024x1024, larger than this model can use (at most 128 a side)", 1),
    (["inpaint", "in.png", "--mask", "mask.png", "-p", "x", "-m", M, "--mask-blur", "1e7"], "--mask-blur 10000000.0: must be in [0, 256]", 2),
    (["inpaint", "in.png", "--mask", "mask.png", "-p", "x", "-m", M, "--mask-blur", "nan"], "--mask-blur nan: must be a finite number", 2),
    (["animate", "-p", "0: x", "-m", M, "--frames", "1000000000"], "--frames 1000000000: must be at most 10,000", 2),
    (["animate", "-p", "0: x", "-m", M, "--fps", "nan"], "--fps nan: must be a finite number", 2),
    (["animate", "-p", "0: x", "-m", M, "--perlin-octaves", "1000000"], "--perlin-octaves 1000000: must be at most 12", 2),
    (["animate", "-p", "0: x", "-m", M, "--kernel", "0: (1e9)"], "reaches 1e+09, outside [0, 63]", 2),
    (["animate", "-p", "0: x", "-m", M, "--steps", "0: (5), 2: (1e9)"], "reaches 1e+09, outside [1, 1000]", 2),
    (["animate", "-p", "0: x", "-m", M, "--frames", "4", "--cfg", "0: (1 + 10**(3*t))"], "cfg: at frame 1 reaches 1001, outside [0, 100]", 2),
    (["animate", "-p", "0: x", "-m", M, "--frames", "3", "--perspective-flip", "--perspective-flip-fv", "0: (53 + 100*t)"], "perspective_flip_fv: at frame 2 reaches 253, outside [1, 179]", 2),
    (["animate", "-p", "0: x", "-m", M, "--frames", "3", "--strength", "0: (0.0001)", "--steps", "2"], "more than the model's 1000 timesteps", 2),
]


@pytest.mark.parametrize("args,message,code", LIMITS, ids=[" ".join(a[0])[:70] for a in LIMITS])
def test_every_number_has_a_limit_named_in_the_message(run_cli, tiny_sd, images, args, message, code):
    before = files_under(images)
    result = run_cli(*[str(tiny_sd) if a == M else a for a in args])
    assert result.exit_code == code, result.stderr
    assert message in one_line(result)
    assert files_under(images) == before


def test_two_prompts_that_map_to_one_name_are_refused_before_any_work(run_cli, tiny_sd, tmp_path):
    (tmp_path / "p.txt").write_text("🙂\n😀\n")
    result = run_cli("txt2img", "--prompt-file", "p.txt", "-m", tiny_sd, "--steps", 1, "--name", "{prompt}", "-o", "out/")
    assert result.exit_code == 2
    assert "images 0 and 1 would both be written to image.png; add {index} or {seed}" in one_line(result)
    assert not (tmp_path / "out").exists()


def test_prompts_in_any_script_keep_their_own_names(run_cli, tiny_sd, tmp_path):
    (tmp_path / "p.txt").write_text("🙂 smile\n猫\nقطة\n")
    result = run_cli("txt2img", "--prompt-file", "p.txt", "-m", tiny_sd, "--steps", 1, "--name", "{prompt}", "-o", "out/")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["smile.png", "猫.png", "قطة.png"])


def test_inpaint_replay_refuses_a_changed_mask(run_cli, tiny_sd, images):
    made = run_cli("inpaint", "in.png", "--mask", "mask.png", "-p", "x", "-m", tiny_sd, "--steps", 2, "--seed", 3, "-o", "made.png")
    assert made.exit_code == 0, made.stderr
    again = run_cli("inpaint", "--replay", "made.png", "-m", tiny_sd, "-o", "same.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(images / "made.png"), pixels(images / "same.png"))
    mask = Image.open(images / "mask.png").copy()
    mask.paste(255, (0, 0, 4, 4))
    mask.save(images / "mask.png")
    result = run_cli("inpaint", "--replay", "made.png", "-m", tiny_sd, "-o", "changed.png")
    assert result.exit_code == 1
    assert "mask.png has changed since the image was made (sha256 differs)" in one_line(result)
    assert not (images / "changed.png").exists()


def test_a_replayed_record_never_reads_a_folder(run_cli, tiny_sd, images):
    made = run_cli("img2img", "in.png", "-p", "x", "-m", tiny_sd, "--steps", 2, "--seed", 3, "-o", "made.png")
    assert made.exit_code == 0, made.stderr
    record = json.loads(Image.open(images / "made.png").text["scumble"])
    record["batch"]["inputs"][0]["image"] = "/"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("scumble", json.dumps(record))
    Image.open(images / "made.png").save(images / "forged.png", pnginfo=info)
    result = run_cli("img2img", "--replay", "forged.png", "-m", tiny_sd, "-o", "x.png")
    assert result.exit_code == 1 and "/" in one_line(result)
    assert not (images / "x.png").exists()


def test_replay_cannot_be_mixed_with_settings_flags(run_cli, tiny_sd, tmp_path):
    made = run_cli("txt2img", "x", "-m", tiny_sd, "--steps", 1, "--seed", 3, "-o", "made.png")
    assert made.exit_code == 0
    result = run_cli("txt2img", "--replay", "made.png", "-m", tiny_sd, "--steps", 5, "-o", "again.png")
    assert result.exit_code == 2 and "cannot be combined with --steps" in one_line(result)


def test_model_index_that_is_a_list_is_one_line(run_cli, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model_index.json").write_text("[1, 2]")
    result = run_cli("txt2img", "x", "-m", folder)
    assert result.exit_code == 1 and "model_index.json must be a JSON object, not a list" in one_line(result)


@pytest.mark.parametrize("text,message", [
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested more than 32 levels deep"),
    ('{"frames": "many"}', "frames = many: must be a whole number"),
    ('{"frames": true}', "frames = True: must be a whole number"),
    ('{"prompts": ["a", "b"]}', "prompts = ['a', 'b']: must be a table of frame -> prompt"),
    ('{"max_frames": 2, "animation_mode": "2D", "prompts": ["a"]}', "prompts must be a table of frame -> prompt, not a list"),
])
def test_settings_files_of_the_wrong_shape_are_one_line(run_cli, tiny_sd, tmp_path, text, message):
    (tmp_path / "s.json").write_text(text)
    result = run_cli("animate", "--settings", "s.json", "-m", tiny_sd, "-o", "a.mp4")
    assert result.exit_code in (1, 2) and message in one_line(result)
    assert not (tmp_path / "a.mp4").exists()


def test_a_preset_that_is_not_utf8_is_one_line(run_cli, tiny_sd, tmp_path):
    folder = tmp_path / ".config" / "scumble" / "presets"
    folder.mkdir(parents=True)
    (folder / "latin.toml").write_bytes(b'description = "caf\xe9"\n')
    result = run_cli("txt2img", "x", "-m", tiny_sd, "--preset", "latin")
    assert result.exit_code == 2 and "not UTF-8 text" in one_line(result)


def test_invalid_utf8_in_a_prompt_is_one_line(tiny_sd, tmp_path):
    result = subprocess.run([sys.executable, "-m", "scumble", "txt2img", b"caf\xff", "-m", str(tiny_sd), "-o", "x.png"], cwd=tmp_path, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "is not valid UTF-8" in one_line(result)
    assert not (tmp_path / "x.png").exists()


def test_dev_full_is_one_line(run_cli, tiny_sd):
    result = run_cli("txt2img", "x", "-m", tiny_sd, "--steps", 1, "-o", "/dev/full")
    assert result.exit_code == 1 and "/dev/full: could not write" in one_line(result)


def test_png_bytes_are_not_sent_to_a_terminal(tiny_sd, tmp_path):
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "scumble", "txt2img", "x", "-m", str(tiny_sd), "-o", "-"], cwd=tmp_path, stdout=follower, stderr=subprocess.PIPE, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2 and "-o -: standard output is a terminal" in result.stderr


# ---------------------------------------------------------------- no "unexpected": every exception class the core raises


def _domain_errors():
    from scumble.core.errors import ScumbleError

    found, todo = [], [ScumbleError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("error", _domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_is_one_line_with_its_exit_code(run_cli, tiny_sd, monkeypatch, error):
    from scumble.core.tasks import runner

    def boom(*args, **kwargs):
        raise error("the thing that went wrong")

    monkeypatch.setattr(runner, "run", boom)
    result = run_cli("txt2img", "x", "-m", tiny_sd)
    assert result.exit_code == error.exit_code
    assert one_line(result) == "error: the thing that went wrong"


@pytest.mark.parametrize("error,message", [
    (OSError(28, "No space left on device", "out/x.png"), "out/x.png: No space left on device"),
    (MemoryError(), "out of memory"),
    (RecursionError(), "nested too deeply"),
])
def test_system_errors_are_one_line_without_unexpected(run_cli, tiny_sd, monkeypatch, error, message):
    from scumble.core.tasks import runner

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(runner, "run", boom)
    result = run_cli("txt2img", "x", "-m", tiny_sd)
    assert result.exit_code == 1 and message in one_line(result)


# ---------------------------------------------------------------- a CLI that behaves like one


@pytest.mark.parametrize("command", ["txt2img", "img2img", "inpaint", "animate"])
def test_help_has_examples_defaults_and_no_placeholders(run_cli, command):
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "Examples:" in text and "<bool>" not in text
    assert "default: scumble-mini]" in " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= 100
    if command == "animate":
        assert "[default: lab]" in " ".join(text.split())


@pytest.mark.parametrize("command", [["info"], ["models"], ["schedulers"], ["presets"], ["prompt"], ["grid"], ["schedules", "show"], ["schedules", "plot"]])
def test_every_other_subcommand_has_examples(run_cli, command):
    result = run_cli(*command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout and "<bool>" not in result.stdout


def test_completion_is_offered_for_bash_zsh_and_fish(run_cli):
    result = run_cli("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


@pytest.mark.parametrize("words,expected", [
    ("scumble txt", "txt2img"),
    ("scumble txt2img --sched", "--scheduler"),
    ("scumble txt2img --scheduler dpm", "dpmpp_2m"),
    ("scumble animate --color-coherence l", "lab"),
    ("scumble txt2img --preset tur", "turbo"),
])
def test_completion_knows_commands_options_and_names(words, expected, tmp_path):
    env = os.environ | {"_SCUMBLE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1), "XDG_CONFIG_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "from scumble.cli.app import main; main()"], capture_output=True, text=True, env=env)
    assert expected in result.stdout.split(), (result.stdout, result.stderr)


def test_schedulers_lists_the_papers_noise_schedules_and_plot_works_after_the_plain_install(run_cli):
    listing = run_cli("schedulers").stdout
    assert "cosine[:start=,end=,tau=]" in listing and "sigmoid" in listing and "linear" in listing
    import importlib.metadata

    requires = importlib.metadata.requires("scumble") or []
    assert any(r.startswith("matplotlib") and "extra" not in r for r in requires)
