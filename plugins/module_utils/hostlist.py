"""Slurm hostlist expressions (SLURM_JOB_NODELIST), expanded as `scontrol show hostnames` does.

`node[01-03,07]` is node01 node02 node03 node07: a range keeps the width of its lower bound, zero-padded.
Several bracket groups multiply out, the last varying fastest (`a[1-2]-b[3-4]` is a1-b3 a1-b4 a2-b3
a2-b4). Commas outside brackets (or whitespace) separate expressions.
"""

from __future__ import annotations

import itertools
import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
# A single expansion larger than this is surely a typo (node[1-1000000]), not an allocation.
MAX_HOSTS = 100_000


class HostlistError(ValueError):
    """A malformed hostlist expression; the message says where."""


def _split_top_level(expression: str) -> list[str]:
    """Split on commas and whitespace outside brackets, checking that brackets pair up."""
    parts, current, depth = [], "", 0
    for char in expression:
        if char == "[":
            if depth:
                raise HostlistError(f"{expression!r}: brackets inside brackets")
            depth = 1
        elif char == "]":
            if not depth:
                raise HostlistError(f"{expression!r}: ']' without '['")
            depth = 0
        if not depth and (char == "," or char.isspace()):
            if current:
                parts.append(current)
            elif char == ",":
                raise HostlistError(f"{expression!r}: an empty name between commas")
            current = ""
        else:
            current += char
    if depth:
        raise HostlistError(f"{expression!r}: '[' without ']'")
    if current:
        parts.append(current)
    elif expression.rstrip().endswith(","):
        raise HostlistError(f"{expression!r}: ends with a comma")
    return parts


def _expand_brackets(body: str, part: str) -> list[str]:
    values = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if not match:
            raise HostlistError(f"{part!r}: [{body}] holds {item!r}, not a number or a range lo-hi")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise HostlistError(f"{part!r}: the range {item} runs backwards")
        if int(high) - int(low) >= MAX_HOSTS:
            raise HostlistError(f"{part!r}: the range {item} has more than {MAX_HOSTS} hosts")
        values += [str(n).zfill(len(low)) for n in range(int(low), int(high) + 1)]
    return values


def _expand_part(part: str) -> list[str]:
    if part.startswith("["):
        raise HostlistError(f"{part!r}: a range without a host name before it")
    pieces = re.split(r"(\[[^\]]*\])", part)
    choices = [_expand_brackets(p[1:-1], part) if p.startswith("[") else [p] for p in pieces if p]
    total = 1
    for options in choices:
        total *= len(options)
    if total > MAX_HOSTS:
        raise HostlistError(f"{part!r}: expands to more than {MAX_HOSTS} hosts")
    return ["".join(combo) for combo in itertools.product(*choices)]


def expand_hostlist(expression: str) -> list[str]:
    """Every host name of the expression, in order, each once."""
    if not expression or not expression.strip():
        raise HostlistError("the nodelist is empty")
    hosts: list[str] = []
    for part in _split_top_level(expression.strip()):
        hosts += _expand_part(part)
    return list(dict.fromkeys(hosts))


def hosts_of(expression: str) -> list[str]:
    """The hosts of a node list SLURM printed itself (squeue's %N): expanded, or the text as one name when it is
    not a host list (empty for a step that has no node)."""
    try:
        return expand_hostlist(expression)
    except HostlistError:
        return [expression] if expression else []
