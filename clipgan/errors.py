"""The one exception type users see: the CLI prints its message on one line and exits 2."""


class ClipganError(Exception):
    """Bad input or an unusable file: a short message naming the problem, no traceback."""


class ClipganNotice(UserWarning):
    """Something the user should know that is not an error (a size rounded, a word the model lacks)."""


class NumericError(ClipganError):
    """NaN or inf in the optimization: the run stops, the last good image is kept."""
