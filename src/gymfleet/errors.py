"""Errors a person can act on: one line that says what is wrong and how to fix it."""


class GymfleetError(Exception):
    """An error whose message is shown to the user as it is, on one line."""
