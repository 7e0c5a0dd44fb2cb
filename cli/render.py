"""What the user sees: a progress bar on stderr, JSON lines on stdout, a summary at the end."""

from __future__ import annotations

import json
import sys
import unicodedata

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

stderr = Console(stderr=True, highlight=False)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control (C0, DEL, C1), format (bidi overrides such as U+202E), line and paragraph separators,
# surrogates (undecodable bytes in file names) and unassigned or private code points.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _escape(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 in a file name (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, limit: int = 2000) -> str:
    """Text from files made safe for a terminal: one line, no escape sequences, at most `limit` characters of it.

    A file name holding a newline could otherwise print a fake `error:` line, and one holding ESC
    could drive the terminal. Invisible characters become visible escapes (`\\n`, `\\x1b`, `\\u202e`).
    """
    text = str(text)
    cut = max(0, len(text) - limit)
    if cut:
        text = text[:limit]
    out = "".join(_escape(ch) if unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch for ch in text)
    return f"{out}… ({cut} more characters)" if cut else out


def error_line(message: str) -> None:
    # Plain print, not rich: the message may contain [brackets] that rich would read as markup.
    print(f"error: {printable(message)}", file=sys.stderr, flush=True)


def warning_line(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr, flush=True)


class ConsoleReporter:
    """Reports a run: a rich progress bar over images and steps when stderr is a terminal."""

    def __init__(self, quiet: bool = False, json_lines: bool = False):
        self.quiet = quiet
        self.json_lines = json_lines
        self.progress: Progress | None = None
        self._images = self._steps = self._frames = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
        return False

    def start(self, total_images: int, steps: int) -> None:
        if self.quiet or not sys.stderr.isatty() or total_images == 0:
            return
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr,
            transient=True,
        )
        self.progress.start()
        if steps:
            self._images = self.progress.add_task("images", total=total_images)
        self._steps = self.progress.add_task("steps", total=steps or None)

    def step(self, done: int, total: int) -> None:
        if self.progress:
            self.progress.update(self._steps, completed=done, total=total)

    def image_done(self, result) -> None:
        if self.progress and not result.skipped and self._images is not None:
            self.progress.advance(self._images)
        if self.json_lines and not result.skipped:
            # One write per line: processes sharing stdout (torchrun) must not interleave, even unbuffered.
            sys.stdout.write(json.dumps({"path": result.path, "seed": result.seed, "settings": result.record}) + "\n")
            sys.stdout.flush()
        elif not self.quiet and result.path:
            verb = "skipped (exists)" if result.skipped else "wrote"
            self._print(f"{verb} {result.path} (seed {result.seed})")

    def image_failed(self, label: str, message: str) -> None:
        self._print(f"error: {message}" if message.startswith(label) else f"error: {label}: {message}")

    def frame_done(self, index: int, total: int, resumed: bool = False) -> None:
        if self.progress:
            if self._frames is None:
                self._frames = self.progress.add_task("frames", total=total)
            self.progress.update(self._frames, completed=index + 1)
        elif not self.quiet and not resumed and sys.stderr.isatty() is False and (index + 1) % 10 == 0:
            print(f"frame {index + 1}/{total}", file=sys.stderr, flush=True)

    def notice(self, message: str) -> None:
        if not self.quiet:
            self._print(f"notice: {message}")

    def _print(self, text: str) -> None:
        text = printable(text)
        if self.progress:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def summary(self, summary) -> None:
        if (self.quiet and not summary.failed) or len(summary.written) + len(summary.skipped) + len(summary.failed) <= 1:
            return  # one image: its own line already said everything
        parts = [f"{len(summary.written)} written"]
        if summary.skipped:
            parts.append(f"{len(summary.skipped)} skipped")
        if summary.failed:
            parts.append(f"{len(summary.failed)} failed")
        print(f"{', '.join(parts)} in {summary.seconds:.1f}s", file=sys.stderr, flush=True)


def files_summary(summary, noun: str, quiet: bool) -> int:
    """Each failed file on its own line, then one count line; the exit code (1 if anything failed)."""
    for label, problem in summary.failed:
        error_line(problem if problem.startswith(label) else f"{label}: {problem}")
    if not quiet:
        written = len(summary.written)
        print(f"wrote {written} {noun}{'s' if written != 1 else ''}" + (f"; {len(summary.failed)} failed" if summary.failed else ""), file=sys.stderr)
    return summary.exit_code
