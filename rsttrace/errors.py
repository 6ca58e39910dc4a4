"""The one error type the CLI turns into a single line and a non-zero exit."""


class RsttraceError(Exception):
    """Something the user can fix. `str()` says what is wrong and how to fix
    it, in one line."""

    exit_code = 1

    def __init__(self, what, fix=None):
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else "%s: %s" % (what, fix))


class UsageError(RsttraceError):
    """Bad input on the command line."""

    exit_code = 2
