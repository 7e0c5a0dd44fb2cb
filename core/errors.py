"""Domain errors. The library raises these; the CLI boundary turns each into one line and an exit code."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """A library's exception as one line for our message: its first non-blank line (or its type), at most `limit` characters."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:limit]


class ScumbleError(Exception):
    """A failure at run time: exit code 1."""

    exit_code = 1


class UsageError(ScumbleError):
    """The user asked for something that cannot be done as asked: exit code 2."""

    exit_code = 2


class ModelError(ScumbleError):
    """A model could not be found or loaded."""


class InputError(ScumbleError):
    """An input file (image, mask, settings) is missing or unreadable."""
