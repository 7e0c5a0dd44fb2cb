"""Parseq manifests: per-frame values, prompts and seeds from --settings parseq.json or a Deforum file's parseq_manifest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scumble.core.animation.keyframes import ParsedSchedule
from scumble.core.animation.video import probe

ZOOM = [1.0, 1.02, 1.05, 1.05, 1.05, 1.1]
TX = [0.0, 10.0, 25.0, 25.0, 40.0, 40.0]
SCALE = [7, 7.5, 8, 8, 9, 6]
STRENGTH = [0.6, 0.6, 0.65, 0.7, 0.7, 0.5]
SEED = [55, 55.5, 56, 57, 57, -1]
PROMPTS = ["a red circle --neg blurry", "a red circle --neg blurry", "a blue square", "a blue square", "a green star --neg dark", "a green star --neg dark"]


def manifest(frames: int = 6, deltas: bool = True, **extra_fields) -> dict:
    """A small manifest shaped as sd-parseq renders one: each managed field, its _delta and _pc, the prompt, the seed travel."""
    rendered = []
    for i in range(frames):
        frame = {"frame": i, "zoom": ZOOM[i], "translation_x": TX[i], "scale": SCALE[i], "strength": STRENGTH[i], "seed": SEED[i], "deforum_prompt": PROMPTS[i],
                 "subseed": math.ceil(SEED[i]), "subseed_strength": SEED[i] % 1, "prompt_weight_1": 1}
        frame |= {k: v[i] for k, v in extra_fields.items()}
        if deltas:
            frame["zoom_delta"] = ZOOM[0] if i == 0 else 1 + ZOOM[i] - ZOOM[i - 1]
            frame["translation_x_delta"] = TX[0] if i == 0 else TX[i] - TX[i - 1]
            frame["zoom_pc"] = ZOOM[i] / max(ZOOM) * 100
        rendered.append(frame)
    return {
        "meta": {"generated_by": "sd_parseq", "version": "0.1.94", "generated_at": "Tue, 01 Aug 2023 03:02:03 GMT"},
        "options": {"input_fps": 20, "bpm": 140, "output_fps": 20, "cadence": 1},
        "managedFields": ["zoom", "translation_x", "scale", "strength", "seed"],
        "keyframes": [{"frame": 0, "zoom": 1}, {"frame": frames - 1, "zoom": ZOOM[frames - 1]}],
        "prompts": {"format": "v2", "enabled": True, "promptList": []},
        "rendered_frames": rendered,
        "rendered_frames_meta": {"zoom": {"max": max(ZOOM), "min": min(ZOOM), "isFlat": False}},
    }


def write(tmp_path: Path, name: str, data) -> str:
    (tmp_path / name).write_text(data if isinstance(data, str) else json.dumps(data))
    return name


def plan(run_cli, *args) -> list[dict]:
    result = run_cli("animate", *args, "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


DEFORUM = {
    "W": 64, "H": 64, "seed": 3, "seed_behavior": "iter", "max_frames": 3, "animation_mode": "2D", "diffusion_cadence": 2, "fps": 15,
    "zoom": "0: (1.3)", "angle": "0: (4)", "translation_x": "0: (0)", "strength_schedule": "0: (0.8)", "cfg_scale_schedule": "0: (5)",
    "noise_schedule": "0: (0.02)", "prompts": {"0": "a deforum prompt"}, "animation_prompts_negative": "deforum negative", "steps": 4,
}


# ---------------------------------------------------------------- the values each frame gets


def test_a_manifest_drives_every_frame(run_cli, tmp_path):
    rows = plan(run_cli, "--settings", write(tmp_path, "p.json", manifest()))
    assert [r["frame"] for r in rows] == list(range(6))  # frames from the manifest
    assert [r["zoom"] for r in rows] == pytest.approx([1.0, 1.02, 1.03, 1.0, 1.0, 1.05])  # zoom_delta: 1 + the change
    assert [r["translation_x"] for r in rows] == pytest.approx([0, 10, 15, 0, 15, 0])
    assert [r["cfg"] for r in rows] == pytest.approx(SCALE)
    assert [r["strength"] for r in rows] == pytest.approx([1 - s for s in STRENGTH])  # Deforum's strength is the amount kept
    assert [r["seed"] for r in rows][:5] == [55, 55, 56, 57, 57]  # the whole part: seed travel is not applied
    assert [r["prompt"] for r in rows] == ["a red circle", "a red circle", "a blue square", "a blue square", "a green star", "a green star"]
    assert [r["negative"] for r in rows] == ["blurry", "blurry", "", "", "dark", "dark"]
    assert all(r["key"] for r in rows)  # cadence 1 from the manifest


def test_seed_minus_one_is_a_reproducible_random_seed(run_cli, tmp_path):
    path = write(tmp_path, "p.json", manifest())
    first, again = plan(run_cli, "--settings", path), plan(run_cli, "--settings", path)
    assert first[5]["seed"] not in (-1, 57) and first[5]["seed"] == again[5]["seed"]


def test_values_given_every_frame_come_back_exactly():
    values = [1.0, 1.0, 1.0, 1.02, 1.04, 1.06, 1.03, 0.1 + 0.2, 0.1 + 0.2, 0.3, 7.0, 7.0]
    schedule = ParsedSchedule.from_values(values)
    assert schedule.evaluate(len(values)) == values
    assert len(schedule.keyframes) < len(values)  # frames on a straight run need no keyframe
    assert schedule.evaluate(len(values) + 3)[-3:] == [7.0] * 3  # a longer run holds the last value, as Deforum does
    oscillation = [1 + 0.1 * math.sin(i / 3) for i in range(500)]
    assert ParsedSchedule.from_values(oscillation).evaluate(500) == oscillation


def test_fields_scumble_does_not_use_are_named_in_one_line(run_cli, tmp_path):
    data = manifest(antiblur_kernel=[5] * 6, noise_multiplier=[1.05] * 6, cn_1_weight=[1] * 6, hybrid_comp_mask_contrast=[1] * 6)
    result = run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == [
        "warning: p.json: Parseq: fields not used: noise_multiplier, cn_1_weight, hybrid_comp_mask_contrast",
        "warning: p.json: Parseq: fractional seeds (seed travel to the next seed) are not applied: each frame takes its seed's whole part",
    ]
    assert [r["kernel"] for r in json.loads(result.stdout)] == [5] * 6  # antiblur_kernel is ours


def test_composable_prompts_and_idle_3d_fields_are_warned_about(run_cli, tmp_path):
    data = manifest(translation_z_delta=[0, 2, 2, 2, 2, 2], translation_z=[0, 2, 4, 6, 8, 10])
    data["rendered_frames"][3]["deforum_prompt"] = "a cat: 0.5 AND a dog: 0.5"
    for frame in data["rendered_frames"]:
        frame["seed"] = 7
    result = run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == [
        "warning: p.json: Parseq: prompts joined with ' AND ' (overlapping Parseq prompts, from frame 3) are read as one prompt: scumble has no composable diffusion",
        "warning: p.json: Parseq: fields this run does not read: translation_z (3D only: --animation-mode 3D)",
    ]
    rows = plan(run_cli, "--settings", "p.json", "--animation-mode", "3D")
    assert [r["translation_z"] for r in rows] == [0, 2, 2, 2, 2, 2]


def test_flags_win_over_the_manifest(run_cli, tmp_path):
    path = write(tmp_path, "p.json", manifest())
    rows = plan(run_cli, "--settings", path, "--cfg", 3, "--zoom", "0: (1.5)", "--seed-behavior", "fixed", "--seed", 9, "-p", "0: my prompt", "--cadence", 2)
    assert {r["cfg"] for r in rows} == {3} and {r["zoom"] for r in rows} == {1.5} and {r["seed"] for r in rows} == {9}
    assert {r["prompt"] for r in rows} == {"my prompt"} and [r["key"] for r in rows] == [True, False, True, False, True, True]
    assert [r["translation_x"] for r in rows] == pytest.approx([0, 10, 15, 0, 15, 0])  # what no flag names stays the manifest's


def test_frames_flag_cuts_or_holds_the_manifest(run_cli, tmp_path):
    path = write(tmp_path, "p.json", manifest())
    short = run_cli("animate", "--settings", path, "--frames", 3, "--plan", "--json")
    assert short.exit_code == 0 and not [w for w in warnings(short) if "left out" in w]  # frames past the run are never read, as Deforum reads none
    assert [r["cfg"] for r in json.loads(short.stdout)] == SCALE[:3]
    rows = plan(run_cli, "--settings", path, "--frames", 9)
    assert [r["cfg"] for r in rows] == SCALE + [6] * 3 and rows[-1]["prompt"] == "a green star"  # the last frame's values held


def test_fps_and_cadence_come_from_the_options(run_cli, tmp_path):
    data = manifest(frames=4)
    data["options"] |= {"output_fps": 10, "cadence": 2}
    rows = plan(run_cli, "--settings", write(tmp_path, "p.json", data))
    assert [r["key"] for r in rows] == [True, False, True, True]
    assert [r["key"] for r in plan(run_cli, "--settings", "p.json", "--cadence", 3)] == [True, False, False, True]


def test_without_deltas_motion_fields_take_their_values(run_cli, tmp_path):
    # a hand-made manifest without _delta fields: the deltas are made as Parseq makes them
    rows = plan(run_cli, "--settings", write(tmp_path, "p.json", manifest(deltas=False)))
    assert [r["zoom"] for r in rows] == pytest.approx([1.0, 1.02, 1.03, 1.0, 1.0, 1.05])


# ---------------------------------------------------------------- embedded in a Deforum file


def test_a_deforum_file_embedding_a_manifest(run_cli, tmp_path):
    data = DEFORUM | {"parseq_manifest": json.dumps(manifest())}
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", data), "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 6 and all(r["key"] for r in rows)  # frames and cadence from the manifest
    assert [r["zoom"] for r in rows] == pytest.approx([1.0, 1.02, 1.03, 1.0, 1.0, 1.05])
    assert [r["cfg"] for r in rows] == pytest.approx(SCALE)
    assert [r["prompt"] for r in rows][::2] == ["a red circle", "a blue square", "a green star"]
    assert rows[2]["negative"] == ""  # the manifest's prompt is used alone, as Deforum uses it
    assert {r["angle"] for r in rows} == {4} and {r["noise"] for r in rows} == {0.02}  # what the manifest does not manage is the file's
    assert "Parseq" not in " ".join(warnings(result)).replace("Parseq: fractional seeds", "")


def test_deforum_switches_deltas_and_overrides(run_cli, tmp_path):
    data = DEFORUM | {"parseq_manifest": manifest(), "parseq_use_deltas": False, "parseq_non_schedule_overrides": False}
    rows = plan(run_cli, "--settings", write(tmp_path, "d.json", data))
    assert len(rows) == 3 and [r["key"] for r in rows] == [True, False, True]  # max_frames 3 and cadence 2 are the file's
    assert [r["zoom"] for r in rows] == ZOOM[:3] and [r["translation_x"] for r in rows] == TX[:3]  # values, not deltas
    rows = plan(run_cli, "--settings", "d.json", "--frames", 5)
    assert [r["zoom"] for r in rows] == ZOOM[:5]


def test_a_manifest_url_is_not_fetched(run_cli, tmp_path):
    data = DEFORUM | {"parseq_manifest": "https://sd-parseq.web.app/api/render?docId=x"}
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", data), "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    assert "warning: d.json: Parseq: parseq_manifest is a URL, and scumble downloads nothing: paste the manifest's JSON there; the file's own schedules are used" in warnings(result)
    assert {r["zoom"] for r in json.loads(result.stdout)} == {1.3}


# ---------------------------------------------------------------- every door checked: one line, exit 2


def _broken(change):
    data = manifest()
    change(data)
    return data


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(rendered_frames={"0": {}}), "rendered_frames must be a list of frames, not a table"),
    (lambda d: d.update(rendered_frames=[]), "rendered_frames holds no frames"),
    (lambda d: d.update(rendered_frames=[{"frame": i, "zoom": 1} for i in range(10_001)]), "rendered_frames holds 10,001 frames; at most 10,000 (--frames' limit)"),
    (lambda d: d["rendered_frames"].__setitem__(2, "frame 2"), "rendered_frames[2] must be a table, not a text"),
    (lambda d: d["rendered_frames"][2].pop("frame"), "rendered_frames[2] has no frame number"),
    (lambda d: d["rendered_frames"][2].update(frame=1.5), "rendered_frames[2] has frame 1.5, not a whole number"),
    (lambda d: d["rendered_frames"][2].update(frame=1), "rendered_frames[2]: frame 1 appears twice (frames run 0, 1, 2, ... once each)"),
    (lambda d: d["rendered_frames"][5].update(frame=9), "rendered_frames: frame 5 is missing (frames run 0, 1, 2, ... once each)"),
    (lambda d: (d["rendered_frames"][2].update(frame=3), d["rendered_frames"][3].update(frame=2)), "rendered_frames[2] is frame 3: frames must be in order, 0, 1, 2, ..."),
    (lambda d: d["rendered_frames"][3].update(scale="high"), "frame 3: scale \"high\" must be a number"),
    (lambda d: d["rendered_frames"][3].update(scale=True), "frame 3: scale true must be a number"),
    (lambda d: d["rendered_frames"][3].pop("zoom_delta"), "frame 3 has no zoom_delta (frame 0 has it, so every frame must)"),
    (lambda d: d["rendered_frames"][1].update(deforum_prompt=["a", "b"]), "frame 1: deforum_prompt must be text, not a list"),
    (lambda d: d.update(options=[20]), "options must be a table (output_fps, cadence), not a list"),
])
def test_a_malformed_manifest_is_one_line(run_cli, tmp_path, change, message):
    result = run_cli("animate", "--settings", write(tmp_path, "p.json", _broken(change)), "--plan")
    assert one_error_line(result) == f"error: --settings p.json (Parseq): {message}"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_a_value_that_is_not_a_finite_number_is_refused(run_cli, tmp_path, value):
    text = json.dumps(manifest()).replace('"scale": 8,', f'"scale": {value},', 1)
    assert value in text
    line = one_error_line(run_cli("animate", "--settings", write(tmp_path, "p.json", text), "--plan"))
    assert line.startswith("error: --settings p.json (Parseq): frame 2: scale ") and line.endswith("must be a finite number of at most 1e+12")


def test_values_are_held_to_the_options_limits(run_cli, tmp_path):
    data = manifest()
    data["rendered_frames"][4]["scale"] = 500
    line = one_error_line(run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--plan"))
    assert line == "error: --settings p.json (Parseq): cfg: at frame 4 reaches 500, outside [0, 100]"
    data = manifest()
    data["options"]["output_fps"] = 0
    line = one_error_line(run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--plan"))
    assert line == "error: --settings p.json (Parseq): fps = 0: must be in [1, 240]"
    data = manifest()
    data["rendered_frames"][1]["deforum_prompt"] = "x" * 20_001
    line = one_error_line(run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--plan"))
    assert line.startswith("error: --settings p.json (Parseq): prompts = ") and line.endswith(": prompt for frame '1': longer than 20,000 characters")


@pytest.mark.parametrize("embedded,message", [
    ("{not json", "parseq_manifest: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("[1, 2]", "parseq_manifest: a Parseq manifest is a JSON object, not a list"),
    ("[" * 100 + "]" * 100, "parseq_manifest: nested more than 32 levels deep"),
    ('{"rendered_frames": [{"frame": 0, "zoom": "1"}]}', "parseq_manifest: frame 0: zoom \"1\" must be a number"),
    ('{"meta": {}}', "parseq_manifest: rendered_frames must be a list of frames, not missing"),
])
def test_a_malformed_embedded_manifest_is_one_line(run_cli, tmp_path, embedded, message):
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", DEFORUM | {"parseq_manifest": embedded}), "--plan")
    assert one_error_line(result) == f"error: --settings d.json (Deforum): {message}"


# ---------------------------------------------------------------- a real render


def test_a_manifest_renders_its_frames(run_cli, tiny_sd, tmp_path):
    data = manifest(frames=5)
    data["options"] |= {"output_fps": 10, "cadence": 2}
    result = run_cli("animate", "--settings", write(tmp_path, "p.json", data), "--model", tiny_sd, "-W", 32, "-H", 32, "--steps", 2, "-o", "out.mp4", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 5
    info = probe(tmp_path / "out.mp4")
    assert (info["frames"], info["fps"], info["size"]) == (5, 10.0, (32, 32))
    assert len(list((tmp_path / "out.frames").glob("0*.png"))) == 5
    record = json.loads((tmp_path / "out.frames" / "settings.json").read_text())
    assert record["seed_behavior"] == "schedule" and record["cadence"] == 2 and record["zoom"].startswith("0: (1), 1: (1.02")
