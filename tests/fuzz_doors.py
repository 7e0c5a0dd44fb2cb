"""Hostile values through every door, run by test_fuzz.py in a child process under a memory limit.

For each generated (door, option, value): the CLI must exit 0, 1 or 2; on failure print exactly one
`error:` line with no "unexpected" and no traceback; take a bounded time; and never create or change
a file outside the run's own output folder.

    python tests/fuzz_doors.py MODEL_FOLDER WORKDIR EXAMPLES
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

MODEL, WORK, EXAMPLES = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
os.chdir(WORK)
os.environ["XDG_CONFIG_HOME"] = str(WORK / ".config")
os.environ["HF_HUB_OFFLINE"] = "1"

from scumble.cli.app import app  # noqa: E402
from scumble.core.request.options import options_for  # noqa: E402

IMAGE_OPTIONS = sorted(set(options_for("img2img")) - {"model", "config", "output", "prompt", "mask"})
ANIMATE_OPTIONS = sorted(set(options_for("animate")) - {"model", "config", "output", "init_image", "video_input", "resume", "prompts"})

hostile_numbers = st.sampled_from([0, -1, 1, 7, 2**31, 2**63, 10**12, -10**9, 1e308, 1e-300, -0.0, 0.5, 3.7, 8, 64, 4096, 4104])
hostile_floats = st.sampled_from([math.nan, math.inf, -math.inf, 1e12, -1e12])
hostile_text = st.sampled_from(["", "x", "auto", "\x1b[31mred", "a\nb", "{seed.__class__}", "../../etc/passwd", "0: (1e9)", "0: (t**t**t)", "0: (__import__('os'))", "9" * 5000, "cosine:tau=nan", "1/0", "\udcff", "0: (1), 99999999: (2)"])
hostile_values = st.one_of(hostile_numbers, hostile_floats, hostile_text, st.booleans(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def snapshot() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in WORK.rglob("*") if p.is_file() and "out" not in p.parts and ".cache" not in p.parts}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\\udcff", "?")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def check(args: list[str]) -> None:
    before = snapshot()
    started = time.monotonic()
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    seconds = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    problem = None
    if result.exit_code not in (0, 1, 2):
        problem = f"exit {result.exit_code}: {result.exception!r}"
    elif result.exit_code and not any(line.startswith("error: ") for line in lines):
        problem = "no error line"
    elif result.exit_code == 2 and len(lines) != 1:
        problem = "a usage error must be one line"
    elif "unexpected" in result.stderr or "Traceback" in result.stderr or "out of memory" in result.stderr:
        problem = "unexpected error"
    elif seconds > 60:
        problem = f"took {seconds:.0f}s"
    elif snapshot() != before:
        problem = "changed a file outside the output folder"
    if problem:
        print(f"FAIL {problem}\n  args: {args!r}\n  stderr: {result.stderr[-800:]}", file=sys.stderr)
        raise AssertionError(problem)


FAST = ["--steps", "1", "-W", "32", "-H", "32"]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(door=st.sampled_from(["flag", "preset", "settings", "record"]), option=st.sampled_from(IMAGE_OPTIONS + ANIMATE_OPTIONS), value=hostile_values)
def test_doors(door: str, option: str, value) -> None:
    Image.new("RGB", (32, 32), (120, 30, 30)).save(WORK / "in.png")
    if door == "flag":
        flag = "--" + option.replace("_", "-")
        task = "animate" if option in ANIMATE_OPTIONS and option not in IMAGE_OPTIONS else "img2img"
        shown = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        base = ["animate", "-p", "0: x", "--frames", "2", "-o", "out/a.mp4"] if task == "animate" else ["img2img", "in.png", "-p", "x", "-o", "out/"]
        check([*base, "-m", str(MODEL), *(FAST if option not in ("steps", "width", "height") else []), flag, shown] if not isinstance(value, bool) else [*base, "-m", str(MODEL), flag])
    elif door == "preset":
        folder = WORK / ".config" / "scumble" / "presets"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "f.toml").write_text(f"{option} = {toml_value(value)}\n")
        check(["img2img", "in.png", "-p", "x", "-m", str(MODEL), "--preset", "f", "-o", "out/"])
    elif door == "settings":
        (WORK / "s.json").write_text(json.dumps({option: value, "frames": 2, "steps": 1, "width": 32, "height": 32} | ({option: value})))
        check(["animate", "--settings", "s.json", "-m", str(MODEL), "-o", "out/a.mp4"])
    else:
        record = json.loads((WORK / "made.png.json").read_text())
        record[option] = value
        info = PngImagePlugin.PngInfo()
        info.add_text("scumble", json.dumps(record))
        Image.new("RGB", (32, 32)).save(WORK / "forged.png", pnginfo=info)
        check(["img2img", "--replay", "forged.png", "-m", str(MODEL), "-o", "out/r.png"])


if __name__ == "__main__":
    Image.new("RGB", (32, 32), (120, 30, 30)).save(WORK / "in.png")
    made = CliRunner().invoke(app, ["img2img", "in.png", "-p", "x", "-m", str(MODEL), "--steps", "2", "--seed", "1", "-o", "out/made.png"])
    assert made.exit_code == 0, made.stderr
    (WORK / "made.png.json").write_text(Image.open(WORK / "out" / "made.png").text["scumble"])
    test_doors()
    print("ok", file=sys.stderr)
