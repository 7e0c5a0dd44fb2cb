"""A1111 prompt syntax: emphasis, chunks, BREAK, editing and alternation, on the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scumble.core.sampling import prompts
from scumble.core.sampling.prompts import PromptError


@pytest.mark.parametrize("text,runs", [
    ("a cat", [("a cat", 1.0)]),
    ("a (cat)", [("a ", 1.0), ("cat", 1.1)]),
    ("a ((cat))", [("a ", 1.0), ("cat", pytest.approx(1.21))]),
    ("a [cat]", [("a ", 1.0), ("cat", pytest.approx(1 / 1.1))]),
    ("a (cat:1.5) sat", [("a ", 1.0), ("cat", 1.5), (" sat", 1.0)]),
    ("((a:1.5) b)", [("a", pytest.approx(1.65)), (" b", pytest.approx(1.1))]),
    (r"a \(cat\)", [("a (cat)", 1.0)]),
    ("time: 12:30", [("time: 12:30", 1.0)]),
])
def test_emphasis_follows_a1111(text, runs):
    assert prompts.weighted_runs(text) == runs


def test_break_starts_a_new_chunk():
    runs = prompts.weighted_runs("a red circle BREAK a blue square")
    assert runs[1] is prompts.BREAK and runs[0] == ("a red circle ", 1.0)


@pytest.mark.parametrize("text,position", [("a (cat", 3), ("a cat)", 6), ("a [cat)", 3)])
def test_unbalanced_brackets_point_at_the_character(text, position):
    with pytest.raises(PromptError, match=f"at character {position} "):
        prompts.check(text)


def test_editing_switches_the_text_at_the_step():
    entries = prompts.schedule("a [red:blue:5] circle", 10)
    assert entries == [(5, "a red circle"), (10, "a blue circle")]
    assert prompts.schedule("[cat::0.5] dog", 10) == [(5, "cat dog"), (10, " dog")]
    assert prompts.schedule("[cat:3] dog", 10) == [(3, " dog"), (10, "cat dog")]


def test_alternation_takes_the_items_in_turn():
    entries = prompts.schedule("a [cat|dog] toy", 4)
    assert [text for _, text in entries] == ["a cat toy", "a dog toy", "a cat toy", "a dog toy"]


def test_lora_tags_are_taken_out_of_the_text():
    text, refs = prompts.extract_loras("a cat <lora:style:0.7> <lora:other>")
    assert text.strip() == "a cat" and [(r.name, r.weight) for r in refs] == [("style", 0.7), ("other", 1.0)]


# ---------------------------------------------------------------- on the pixels, through the CLI


def _make(run_cli, model, prompt, name, *extra):
    result = run_cli("txt2img", prompt, "--model", model, "--steps", 3, "--seed", 5, "-W", 32, "-H", 32, "-o", name, *extra)
    assert result.exit_code == 0, result.stderr
    from helpers import pixels

    return pixels(name)


@pytest.mark.parametrize("fixture", ["tiny_sd", "tiny_sdxl"])
def test_weight_one_is_the_plain_prompt_and_a_weight_changes_the_image(run_cli, request, fixture):
    model = request.getfixturevalue(fixture)
    plain = _make(run_cli, model, "a blue square", "plain.png")
    assert np.array_equal(plain, _make(run_cli, model, "a (blue:1.0) square", "one.png"))
    assert not np.array_equal(plain, _make(run_cli, model, "a (blue:1.5) square", "heavy.png"))


def test_a_long_prompt_uses_its_second_chunk(run_cli, tiny_sd):
    first = " ".join(["a red circle on a blue background"] * 12)  # more than 75 tokens
    a = _make(run_cli, tiny_sd, first + " and a green square", "a.png")
    b = _make(run_cli, tiny_sd, first + " and a yellow star", "b.png")
    assert not np.array_equal(a, b)


def test_prompt_editing_changes_the_image_and_matches_the_plain_prompt_when_it_never_fires(run_cli, tiny_sd):
    plain = _make(run_cli, tiny_sd, "a red circle", "plain.png")
    assert np.array_equal(plain, _make(run_cli, tiny_sd, "a [red:blue:3] circle", "late.png"))  # switches after the last step
    assert not np.array_equal(plain, _make(run_cli, tiny_sd, "a [red:blue:1] circle", "early.png"))


def test_the_encoder_gives_diffusers_embeddings_for_a_plain_prompt(tiny_sd):
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.conditioning import PromptEncoder
    from scumble.core.sampling.engine import Engine

    pipe = Engine.load(str(tiny_sd), make_runtime("cpu", "fp32")).pipeline("txt2img")
    ours, _, _ = PromptEncoder(pipe).embeds(["a red circle", "a blue square"])
    theirs, _ = pipe.encode_prompt(["a red circle", "a blue square"], "cpu", 1, False)
    assert torch.equal(ours, theirs)


def test_prompt_command_shows_the_parse_and_points_at_bad_syntax(run_cli, tiny_sd):
    shown = run_cli("prompt", "a (red:1.3) circle BREAK [cat|dog]", "--model", tiny_sd, "--steps", 4)
    assert shown.exit_code == 0, shown.stderr
    assert "chunk 1" in shown.stdout and "chunk 2" in shown.stdout and "1.3" in shown.stdout
    bad = run_cli("prompt", "a (red circle", "--model", tiny_sd)
    assert bad.exit_code == 2 and "'(' is never closed at character 3" in bad.stderr
