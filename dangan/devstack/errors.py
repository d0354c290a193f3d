"""The one error the embedded stack raises."""


class DevStackError(RuntimeError):
    """The embedded stack could not start; the message says what to do."""
