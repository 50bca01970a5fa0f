"""Errors a person can act on (one line that says what is wrong and how to fix it), and the exit statuses."""

import enum


class GymfleetError(Exception):
    """An error whose message is shown to the user as it is, on one line."""


class Exit(enum.IntEnum):
    """gymfleet's exit statuses; the numbers are ansible-playbook's where it has the same case."""

    OK = 0
    # status: a component is down or a host did not answer; any other command: an error ansible-playbook reports
    # as its generic 1 (a playbook that fails before any task runs).
    NOT_OK = 1
    HOST_FAILED = 2
    HOST_UNREACHABLE = 4
    # Refused before any host was touched: a bad option, inventory, limit, tag, -e, or no confirmation.
    BAD_INPUT = 5
    INTERRUPTED = 99
