"""Errors a user can cause and fix; the command line prints their message (no traceback) and exits with 2."""


class UserError(Exception):
    """Something in the user's input or environment is wrong; the message says what and what to do."""
