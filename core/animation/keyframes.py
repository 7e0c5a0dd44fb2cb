"""Deforum-style keyframe schedules, parsed against an allowlist: nothing in a schedule is ever executed.

    "0: (1.0), 30: (1.05), 60: (1.0+0.02*sin(t/5))"

Expressions are read with Python's parser (`ast.parse`, which builds a tree and runs nothing) and
evaluated by walking that tree: numbers, + - * / // % **, unary +/-, the names t, max_f, s, pi, e,
and calls to sin, cos, tan, abs, min, max, pow, sqrt, exp, log, floor, ceil. Everything else
(attributes, subscripts, lambdas, comprehensions, strings, other names) is refused with a message
that points at the keyframe and character. Results are bounded so `9**9**9` cannot eat the machine.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from itertools import pairwise

from ..errors import UsageError

MAX_MAGNITUDE = 1e12
MAX_SOURCE = 2000
MAX_NODES = 200
NAMES = ("t", "max_f", "s")
CONSTANTS = {"pi": math.pi, "e": math.e}
FUNCTIONS = {
    "sin": (math.sin, 1),
    "cos": (math.cos, 1),
    "tan": (math.tan, 1),
    "abs": (abs, 1),
    "sqrt": (math.sqrt, 1),
    "exp": (math.exp, 1),
    "log": (math.log, 1),
    "floor": (math.floor, 1),
    "ceil": (math.ceil, 1),
    "pow": (math.pow, 2),
    "min": (min, None),
    "max": (max, None),
}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: _power(a, b),
}


class ScheduleError(UsageError):
    """A schedule that does not parse or evaluate; the message names the keyframe and character."""


class _Refused(Exception):
    def __init__(self, message: str, column: int = 0):
        super().__init__(message)
        self.column = column


def _power(base: float, exponent: float) -> float:
    if base != 0 and abs(exponent) * math.log10(max(abs(base), 1e-300)) > math.log10(MAX_MAGNITUDE):
        raise _Refused(f"{base:g}**{exponent:g} is too large")
    return math.pow(base, exponent)


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.AST
    offset: int  # where `source` starts in the whole schedule string
    names: tuple[str, ...] = NAMES

    @property
    def is_constant(self) -> bool:
        return not any(isinstance(node, ast.Name) and node.id in self.names for node in ast.walk(self.tree))

    def at(self, **env: float) -> float:
        """The value for these variables (each one of `names`)."""
        try:
            return _evaluate(self.tree, env)
        except _Refused as exc:
            raise ScheduleError(f"{self.source.strip()!r}: {exc} (at character {self.offset + exc.column + 1})") from None

    def __call__(self, t: float = 0.0, max_f: float = 0.0, s: float = 0.0) -> float:
        try:
            value = _evaluate(self.tree, {"t": t, "max_f": max_f, "s": s})
        except _Refused as exc:
            raise ScheduleError(f"{exc} (at character {self.offset + exc.column + 1})") from None
        return value


def compile_formula(source: str, names: tuple[str, ...], what: str) -> Expression:
    """A standalone expression in `names` (a --map formula, say); errors name `what` and the character."""
    try:
        return compile_expression(source, names=names)
    except _Refused as exc:
        raise ScheduleError(f"{what} {source!r}: {exc} (at character {exc.column + 1})") from None


def compile_expression(source: str, offset: int = 0, names: tuple[str, ...] = NAMES) -> Expression:
    if len(source) > MAX_SOURCE:
        raise _Refused(f"expression longer than {MAX_SOURCE} characters")
    lead = len(source) - len(source.lstrip())
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise _Refused(f"not an expression ({exc.msg})", lead + max(0, (exc.offset or 1) - 1)) from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise _Refused(f"expression has more than {MAX_NODES} parts", lead)
    for node in nodes:
        _check_node(node, lead, names)
    return Expression(source, tree, offset + lead, names)


def _check_node(node: ast.AST, lead: int, names: tuple[str, ...] = NAMES) -> None:
    column = getattr(node, "col_offset", 0) + lead
    if isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINARY or isinstance(node, (ast.UAdd, ast.USub)):
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _Refused(f"only numbers are allowed, not {node.value!r}", column)
        if abs(node.value) > MAX_MAGNITUDE:
            raise _Refused(f"number {node.value:g} is too large", column)
        return
    if isinstance(node, ast.Name):
        if node.id in names or node.id in CONSTANTS or node.id in FUNCTIONS:
            return
        raise _Refused(f"unknown name {node.id!r}; allowed: {', '.join(names + tuple(CONSTANTS))} and {', '.join(FUNCTIONS)}()", column)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _Refused(f"only calls to {', '.join(FUNCTIONS)} are allowed", column)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _Refused(f"{node.func.id}() takes plain arguments", column)
        _, arity = FUNCTIONS[node.func.id]
        if (arity is not None and len(node.args) != arity) or not node.args:
            raise _Refused(f"{node.func.id}() takes {arity or 'one or more'} argument{'s' if arity != 1 else ''}", column)
        return
    raise _Refused(f"{type(node).__name__.lower()} is not allowed in a schedule", column)


def _evaluate(node: ast.AST, env: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, env)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return float(env[node.id])
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise _Refused(f"{node.id} is a function; call it", node.col_offset)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    try:
        if isinstance(node, ast.BinOp):
            result = _BINARY[type(node.op)](_evaluate(node.left, env), _evaluate(node.right, env))
        else:  # ast.Call, checked at compile time
            function, _ = FUNCTIONS[node.func.id]
            result = function(*[_evaluate(a, env) for a in node.args])
    except _Refused as exc:
        exc.column = exc.column or node.col_offset
        raise
    except ZeroDivisionError:
        raise _Refused("division by zero", node.col_offset) from None
    except (ValueError, OverflowError) as exc:
        raise _Refused(f"math error ({exc})", node.col_offset) from None
    result = float(result)
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise _Refused("the value is too large or not a number", node.col_offset)
    return result


# ---------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Keyframe:
    key: Expression
    value: Expression
    text: str
    index: int


def _split_top_level(text: str, separator: str) -> list[tuple[int, str]]:
    """Split on `separator` outside parentheses: commas inside function calls stay put."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _Refused("unbalanced ')'", i)
        elif char == separator and depth == 0:
            parts.append((start, text[start:i]))
            start = i + 1
    if depth:
        raise _Refused("unbalanced '('", len(text))
    parts.append((start, text[start:]))
    return parts


def parse(text: str, name: str = "schedule") -> list[Keyframe]:
    """Parse a whole schedule; errors name the schedule, the keyframe and the character (1-based)."""
    if isinstance(text, (int, float)):
        text = f"0: ({text})"
    if len(text) > 20 * MAX_SOURCE:
        raise ScheduleError(f"{name}: schedule longer than {20 * MAX_SOURCE} characters")
    keyframes: list[Keyframe] = []
    try:
        entries = [(o, e) for o, e in _split_top_level(text, ",") if e.strip()]
    except _Refused as exc:
        raise ScheduleError(f"{name}: {exc} at character {exc.column + 1}") from None
    if not entries:
        raise ScheduleError(f"{name}: empty schedule (expected e.g. \"0: (1.0)\")")
    for index, (offset, entry) in enumerate(entries, start=1):
        where = f"{name}: keyframe {index} ({entry.strip()!r})"
        colon = _first_top_level(entry, ":")
        if colon is None:
            raise ScheduleError(f"{where}: expected 'frame: (value)' at character {offset + 1}")
        key_text = entry[:colon]
        stripped = key_text.strip()
        if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":  # Deforum quotes expression keys
            key_text = key_text.replace(stripped, " " + stripped[1:-1] + " ", 1)
        parts = []
        for start, part in ((offset, key_text), (offset + colon + 1, entry[colon + 1 :])):
            try:
                parts.append(compile_expression(part, start))
            except _Refused as exc:
                raise ScheduleError(f"{where}: {exc} at character {start + exc.column + 1}") from None
        keyframes.append(Keyframe(parts[0], parts[1], entry.strip(), index))
    return keyframes


def _first_top_level(text: str, char: str) -> int | None:
    depth = 0
    for i, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if c == char and depth == 0:
            return i
    return None


@dataclass(frozen=True)
class ParsedSchedule:
    """A schedule parsed once; `evaluate` gives every frame's value, each checked against the option's bounds."""

    text: str
    keyframes: tuple[Keyframe, ...]
    bounds: object = None  # the option's KeyframeSchedule kind: check_value(v) raises Invalid
    origin: str = ""  # where the schedule came from (a preset, a settings file), for messages; "" for a flag

    @classmethod
    def parse(cls, text: str, name: str = "schedule", bounds: object = None) -> "ParsedSchedule":
        return cls(text, tuple(parse(text, name)), bounds)

    @classmethod
    def from_values(cls, values: list[float]) -> ParsedSchedule:
        """Every frame's value given (a Parseq manifest): a keyframe wherever the values bend.

        Between two keyframes `evaluate` interpolates linearly, so a frame on a straight run between
        its neighbours needs none: the values come back as given. The keyframes are built as parsed
        numbers, not text, so a 10,000-frame oscillation is not held to a typed schedule's length.
        """
        n = len(values)
        kept = [i for i in range(n) if i in (0, n - 1) or values[i] - values[i - 1] != values[i + 1] - values[i]]
        keyframes = []
        for index, frame in enumerate(kept, start=1):
            value = values[frame]
            shown = repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))
            keyframes.append(Keyframe(_number(frame, str(frame)), _number(value, shown), f"{frame}: ({shown})", index))
        return cls(", ".join(kf.text for kf in keyframes), tuple(keyframes))

    def __str__(self) -> str:
        return self.text

    def key_frames(self, frames: int, seed: int = 0, name: str = "schedule") -> tuple[dict[int, Keyframe], list[tuple[Keyframe, float]]]:
        """Each keyframe's frame (Deforum truncates expression keys), and those outside 0..frames-1.

        Deforum never reads a keyframe outside the run (`"max_f-2"` in a 1-frame run, `30` in a 10-frame
        preview); neither do we. A schedule with no keyframe inside is an error: it has no value to hold.
        """
        max_f = frames - 1
        by_frame: dict[int, Keyframe] = {}
        outside: list[tuple[Keyframe, float]] = []
        for kf in self.keyframes:
            try:
                frame = kf.key(t=0, max_f=max_f, s=seed)
            except ScheduleError as exc:
                raise ScheduleError(f"{name}: keyframe {kf.index} ({kf.text!r}) key: {exc}") from None
            if 0 <= int(frame) < frames:  # Deforum truncates the key first: -0.5 is frame 0
                by_frame[int(frame)] = kf
            else:
                outside.append((kf, frame))
        if not by_frame:
            kf, frame = outside[0]
            where = "frames start at 0" if frame < 0 else f"the last frame is {max_f}"
            raise ScheduleError(f"{name}: keyframe {kf.index} ({kf.text!r}) is at frame {frame:g}; {where}, and no keyframe falls within frames 0..{max_f}")
        return by_frame, outside

    def outside(self, frames: int, seed: int = 0, name: str = "schedule") -> list[str]:
        """The keyframes a run of `frames` frames leaves out, each as 'keyframe N ('text') at frame F'."""
        return [f"keyframe {kf.index} ({kf.text!r}) at frame {frame:g}" for kf, frame in self.key_frames(frames, seed, name)[1]]

    def evaluate(self, frames: int, seed: int = 0, name: str = "schedule") -> list[float]:
        """Every frame's value; keyframes outside the run are left out, as Deforum leaves them."""
        max_f = frames - 1
        by_frame, _ = self.key_frames(frames, seed, name)
        values: list[float | None] = [None] * frames
        keys = sorted(by_frame)
        for i, frame in enumerate(keys):
            kf = by_frame[frame]
            end = keys[i + 1] if i + 1 < len(keys) else frames
            span = range(frame, end) if not kf.value.is_constant else range(frame, frame + 1)
            for t in span:
                try:
                    values[t] = kf.value(t=t, max_f=max_f, s=seed)
                except ScheduleError as exc:
                    raise ScheduleError(f"{name}: keyframe {kf.index} ({kf.text!r}) at frame {t}: {exc}") from None
        result = _interpolate(values)
        if self.bounds is not None:
            for t, value in enumerate(result):
                try:
                    self.bounds.check_value(value)
                except ValueError as exc:
                    where = f"{self.origin}: " if self.origin else ""
                    raise ScheduleError(f"{where}{name}: at frame {t} {exc}") from None
        return result


class Schedule:
    """A schedule evaluated for every frame up front, so errors surface before frame 0."""

    def __init__(self, text: "str | float | ParsedSchedule", frames: int, seed: int = 0, name: str = "schedule"):
        parsed = text if isinstance(text, ParsedSchedule) else ParsedSchedule.parse(text if isinstance(text, str) else f"0: ({text})", name)
        self.name, self.text = name, parsed.text
        self.values = parsed.evaluate(frames, seed, name)

    def __getitem__(self, frame: int) -> float:
        return self.values[frame]

    def __len__(self) -> int:
        return len(self.values)


def _number(value: float, source: str) -> Expression:
    """A number as a parsed expression, without parsing text: what `compile_expression(source)` gives."""
    return Expression(source, ast.Expression(body=ast.Constant(value=value)), 0)


def _interpolate(values: list[float | None]) -> list[float]:
    """Linear between known frames, ends held (as Deforum's pandas interpolate does).

    One pass over the gaps, so 10,000 frames with a keyframe every few cost no more than a few; a gap
    between two equal values holds that value exactly (v*(1-w) + v*w can be off in the last bit).
    """
    known = [i for i, v in enumerate(values) if v is not None]
    if not known:
        return [0.0] * len(values)
    out = list(values)
    for i in range(known[0]):
        out[i] = values[known[0]]
    for i in range(known[-1] + 1, len(out)):
        out[i] = values[known[-1]]
    for before, after in pairwise(known):
        a, b = values[before], values[after]
        for i in range(before + 1, after):
            w = (i - before) / (after - before)
            out[i] = a if a == b else a * (1 - w) + b * w
    return [float(v) for v in out]
