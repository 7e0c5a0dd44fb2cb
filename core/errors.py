"""Domain errors. The library raises these; the CLI boundary turns each into one line and an exit code."""


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
