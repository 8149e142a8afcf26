"""The one exception type users see: the CLI prints its message on one line and exits 2."""


class ClipganError(Exception):
    """Bad input or an unusable file: a short message naming the problem, no traceback."""


class ClipganNotice(UserWarning):
    """Something the user should know that is not an error (a size rounded, a word the model lacks)."""


class NumericError(ClipganError):
    """NaN or inf in the optimization: the run stops, the last good image is kept."""


def brief(value, limit: int = 40) -> str:
    """repr(value) on one short line, for messages about values from files (a tensor's repr spans lines)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
