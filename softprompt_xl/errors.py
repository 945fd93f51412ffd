"""The one exception type for mistakes a user can fix: it carries a message meant to be read, not a traceback."""


class UserError(Exception):
    """Bad input or a missing resource. The message names the problem and the fix in one paragraph."""
