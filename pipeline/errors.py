"""The error users can fix themselves: the CLI prints its message as one line instead of a stack trace."""


class UserError(Exception):
    """A problem with what the user asked for; the message names the value and the fix."""
