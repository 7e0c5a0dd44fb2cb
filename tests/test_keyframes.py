"""Keyframe schedules: Deforum's semantics, and an evaluator that nothing hostile gets through."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scumble.core.animation.keyframes import Schedule, ScheduleError, parse


def test_numeric_keyframes_interpolate_linearly_and_hold_the_ends():
    s = Schedule("10: (1.0), 20: (2.0)", 30)
    assert s[0] == 1.0 and s[10] == 1.0 and s[15] == pytest.approx(1.5) and s[20] == 2.0 and s[29] == 2.0


def test_expression_keyframe_is_evaluated_every_frame_until_the_next():
    s = Schedule("0: (1.0), 30: (1.05), 60: (1.0+0.02*sin(t/5))", 90)
    assert s[15] == pytest.approx(1.025)
    for t in (60, 61, 75, 89):
        assert s[t] == pytest.approx(1.0 + 0.02 * math.sin(t / 5))


def test_between_numeric_and_expression_keyframes_interpolates_to_the_expression_value():
    s = Schedule("0: (0), 10: (t*2)", 20)
    assert s[5] == pytest.approx(10.0) and s[10] == 20.0 and s[12] == 24.0


def test_variables_and_expression_keys():
    s = Schedule("0: (s), max_f/2: (max_f), max_f: (t)", 11, seed=7)
    assert s[0] == s[3] == 7.0 and s[5] == 10.0 and s[10] == 10.0  # "s" makes keyframe 1 an expression: held until frame 5


def test_commas_inside_function_calls():
    s = Schedule("0: (max(0.5, min(t, 2))), 5: (pow(2, 3))", 8)
    assert [s[t] for t in range(4)] == [0.5, 1.0, 2.0, 2.0] and s[5] == 8.0


@pytest.mark.parametrize("text", ["0:(1)", "0: 1", " 0 : ( 1.0 ) , 5:(2) ,", 1.5])
def test_loose_spacing_and_plain_numbers(text):
    assert len(Schedule(text, 6)) == 6


def test_every_allowed_function():
    s = Schedule("0: (sin(1)+cos(1)+tan(1)+abs(-1)+sqrt(4)+exp(0)+log(e)+floor(1.5)+ceil(1.5)+pow(2,2)+min(1,2,3)+max(1,2)+pi)", 1)
    expected = math.sin(1) + math.cos(1) + math.tan(1) + 1 + 2 + 1 + 1 + 1 + 2 + 4 + 1 + 2 + math.pi
    assert s[0] == pytest.approx(expected)


@pytest.mark.parametrize("text,where", [
    ("0: (1), 30: (foo)", "keyframe 2 ('30: (foo)'): unknown name 'foo'"),
    ("0: (1), 30: (1+)", "keyframe 2"),
    ("0: (1", "unbalanced '('"),
    ("0: (1))", "unbalanced ')'"),
    ("five: (1)", "unknown name 'five'"),
    ("0: (1/(t-3))", "at frame 3: division by zero"),
    ("-5: (1)", "frames start at 0"),
    ("", "empty schedule"),
])
def test_bad_schedules_name_the_keyframe(text, where):
    with pytest.raises(ScheduleError) as info:
        Schedule(text, 10, name="zoom")
    assert str(info.value).startswith("zoom: ") and where in str(info.value)


def test_error_points_at_the_character():
    with pytest.raises(ScheduleError) as info:
        Schedule("0: (1.0), 30: (1.0 + bad)", 40)
    text = "0: (1.0), 30: (1.0 + bad)"
    assert f"at character {text.index('bad') + 1}" in str(info.value)


SANDBOX_ESCAPES = [
    "__import__('os').system('echo owned')",
    "().__class__.__bases__[0].__subclasses__()",
    "t.__class__",
    "(lambda: 1)()",
    "[x for x in (1, 2)]",
    "eval('1')",
    "exec('1')",
    "open('/etc/passwd')",
    "globals()",
    "getattr(t, 'real')",
    "sin.__globals__",
    "9**9**9",
    "10**10**10",
    "pow(10, 400)",
    "exp(1000)",
    "1e400",
    "'a' * 10",
    "b'x'",
    "{}",
    "t if t else 1",
    "t < 1",
    "not t",
    "sin(x=1)",
    "max(*[1, 2])",
    "f'{t}'",
    "\\x00",
    "(" * 300 + "1" + ")" * 300,
]


@pytest.mark.parametrize("hostile", SANDBOX_ESCAPES)
def test_known_escapes_are_refused(hostile, capfd):
    with pytest.raises(ScheduleError):
        Schedule(f"0: ({hostile})", 3)
    assert "owned" not in capfd.readouterr().out


_ATOMS = st.sampled_from(["t", "max_f", "s", "pi", "e", "1", "0", "2.5", "1e9", "-3", "__import__", "os", "x", "'s'", "[]", "lambda:0"])
_OPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", ",", ".", ":", "(", ")", " ", "sin(", "max(", "pow(", "__class__"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ATOMS, _OPS), max_size=25))
def test_fuzz_evaluator_only_returns_numbers_or_schedule_errors(tokens):
    text = "0: (" + "".join(tokens) + ")"
    try:
        schedule = Schedule(text, 4)
    except ScheduleError:
        return
    assert all(isinstance(v, float) and math.isfinite(v) and abs(v) <= 1e12 for v in schedule.values)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_arbitrary_text(text):
    try:
        Schedule(text, 3)
    except ScheduleError:
        pass


def test_parse_never_executes(tmp_path):
    marker = tmp_path / "executed"
    with pytest.raises(ScheduleError):
        parse(f"0: (open({str(marker)!r}, 'w'))")
    assert not marker.exists()
