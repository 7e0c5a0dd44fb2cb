"""A1111's prompt syntax, written from its documented behaviour (A1111 is AGPL; none of its code is used).

Emphasis: `(x)` x1.1, `((x))` x1.21, `[x]` /1.1, `(x:1.3)` x1.3; `\\(` `\\)` `\\[` `\\]` `\\\\` are literal.
`BREAK` ends a 75-token chunk. Editing: `[from:to:when]`, `[to:when]`, `[from::when]` (when with a '.'
is a fraction of the steps, else a step; below 1 is a fraction too). Alternation: `[a|b]` takes the
items in turn, step by step. `<lora:name:weight>` names a LoRA and is not text.

compel was the library to prefer, but it implements its own weighting (a lerp towards an empty
prompt, no mean restore) and no A1111 mode, so the images would differ from A1111's for the same prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

EMPHASIS = 1.1
_LORA = re.compile(r"<lora:([^:>]+)(?::([^:>]+))?(?::([^:>]+))?>")
_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*$")


class PromptError(UsageError):
    """Bad prompt syntax; the message points at the character."""


@dataclass(frozen=True)
class LoraRef:
    name: str
    weight: float


def _fail(text: str, position: int, problem: str) -> PromptError:
    snippet = text[max(0, position - 20) : position + 20]
    return PromptError(f"prompt: {problem} at character {position + 1} (…{snippet}…)")


def extract_loras(text: str) -> tuple[str, tuple[LoraRef, ...]]:
    """The prompt without its `<lora:name:w>` tags, and the tags (te weight; A1111's optional unet weight is read but the te weight rules)."""
    refs = []
    for match in _LORA.finditer(text):
        name, weight = match.group(1).strip(), match.group(2)
        try:
            value = float(weight) if weight is not None else 1.0
        except ValueError:
            raise _fail(text, match.start(), f"<lora:{name}:{weight}>: the weight is not a number") from None
        if not -10 <= value <= 10 or value != value:
            raise _fail(text, match.start(), f"<lora:{name}:{weight}>: the weight must be in [-10, 10]")
        refs.append(LoraRef(name, value))
    return _LORA.sub("", text), tuple(refs)


# ---------------------------------------------------------------- editing and alternation: one plain prompt per step


def _depths(text: str, start: int = 0):
    """(index, character, bracket depth after it) for every character not escaped by a backslash."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        depth += (c in "([") - (c in ")]")
        yield i, c, depth
        i += 1


def _split_top(body: str, separator: str) -> list[str]:
    parts, start = [], 0
    for i, c, depth in _depths(body):
        if c == separator and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def _when(value: str, steps: int) -> int:
    number = float(value)
    if "." in value or number < 1:
        number *= steps
    return int(min(steps, number))


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start`, honouring escapes and nesting; an error if there is none."""
    for i, c, depth in _depths(text, start):
        if c in ")]" and depth == 0:
            if (c == "]") != (text[start] == "["):
                raise _fail(text, i, f"'{c}' closes the '{text[start]}' at character {start + 1}")
            return i
    raise _fail(text, start, f"'{text[start]}' is never closed")


def resolve(text: str, step: int, steps: int) -> str:
    """The prompt as it reads at `step` (1-based of `steps`): edits and alternations chosen, emphasis kept."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _matching(text, i)
            body = text[i + 1 : end]
            alternatives = _split_top(body, "|")
            parts = _split_top(body, ":")
            if len(alternatives) > 1:
                out.append(resolve(alternatives[(step - 1) % len(alternatives)], step, steps))
                i = end + 1
                continue
            if len(parts) in (2, 3) and _NUMBER.match(parts[-1]):
                when = _when(parts[-1].strip(), steps)
                before, after = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
                out.append(resolve(before if step <= when else after, step, steps))
                i = end + 1
                continue
            out.append("[" + resolve(body, step, steps) + "]")
            i = end + 1
            continue
        if c == "(":
            end = _matching(text, i)
            out.append("(" + resolve(text[i + 1 : end], step, steps) + ")")
            i = end + 1
            continue
        if c in ")]":
            raise _fail(text, i, f"'{c}' closes nothing")
        out.append(c)
        i += 1
    return "".join(out)


def schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """[(last step, prompt)]: the prompt's texts over the steps, A1111's way (step i, 0-based, uses the first entry with i <= last step)."""
    entries: list[tuple[int, str]] = []
    for step in range(1, steps + 1):
        resolved = resolve(text, step, steps)
        if entries and entries[-1][1] == resolved:
            entries[-1] = (step, resolved)
        else:
            entries.append((step, resolved))
    return entries or [(steps, resolve(text, 1, max(steps, 1)))]


def text_at(entries: list[tuple[int, str]], index: int) -> str:
    return next((text for end, text in entries if index <= end), entries[-1][1])


# ---------------------------------------------------------------- emphasis: text runs with weights


BREAK = object()  # a chunk boundary in the runs


def weighted_runs(text: str) -> list:
    """[(text, weight) or BREAK]: A1111's emphasis, adjacent runs of one weight merged."""
    runs: list = []
    stack: list[tuple[str, int]] = []  # (bracket, index of the first run inside it)
    buffer: list[str] = []

    def flush():
        if buffer:
            runs.append(["".join(buffer), 1.0])
            buffer.clear()

    def scale(start: int, factor: float):
        for run in runs[start:]:
            if run is not BREAK:
                run[1] *= factor

    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buffer.append(text[i + 1])
            i += 2
            continue
        if c in "([":
            flush()
            stack.append((c, len(runs), i))
            i += 1
            continue
        if c == ":" and stack and stack[-1][0] == "(":
            close = text.find(")", i)
            number = _NUMBER.match(text[i + 1 : close]) if close != -1 else None
            if number:
                flush()
                _, start, _ = stack.pop()
                scale(start, float(number.group(1)))
                i = close + 1
                continue
        if c in ")]":
            if not stack or stack[-1][0] != ("(" if c == ")" else "["):
                raise _fail(text, i, f"'{c}' closes nothing")
            flush()
            _, start, _ = stack.pop()
            scale(start, EMPHASIS if c == ")" else 1 / EMPHASIS)
            i += 1
            continue
        buffer.append(c)
        i += 1
    if stack:
        raise _fail(text, stack[-1][2], f"'{stack[-1][0]}' is never closed")
    flush()
    out: list = []
    for run in runs:
        for k, piece in enumerate(re.split(r"\bBREAK\b", run[0])):
            if k:
                out.append(BREAK)
            if piece:
                if out and out[-1] is not BREAK and out[-1][1] == run[1]:
                    out[-1] = (out[-1][0] + piece, run[1])
                else:
                    out.append((piece, run[1]))
    return out


def check(text: str, steps: int = 20) -> None:
    """Raise a PromptError pointing at the character when the syntax is bad (at the parse's first step)."""
    clean, _ = extract_loras(text)
    weighted_runs(resolve(clean, 1, steps))
