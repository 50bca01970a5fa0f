#!/usr/bin/env python3
"""Hold the Jinja expressions in roles/ short: a rule or a format longer than LIMIT characters belongs in a filter
with a unit test (CONVENTIONS: roles declare, Python decides).

`--check` (make lint) holds each file's long expressions against tools/jinja_length.allow, which lists per file
the lengths of those still to move: more of them, or a longer one, fails; fewer asks for the list to shrink.
Files rather than lines, so that an edit above an expression does not count as a new one. Without --check it
prints every long expression (file:line), longest first, and with --write rewrites the list. An expression is
counted with its whitespace collapsed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 200
ALLOW = Path(__file__).with_suffix(".allow")
EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def long_expressions(roles: Path) -> dict[str, int]:
    """"<file>:<line>" -> length of every expression in the roles' YAML longer than LIMIT."""
    found = {}
    for path in sorted(roles.rglob("*.yml")):
        text = path.read_text()
        for match in EXPRESSION.finditer(text):
            length = len(" ".join(match.group(0).split()))
            if length > LIMIT:
                line = text.count("\n", 0, match.start()) + 1
                found[f"{path.relative_to(roles.parent)}:{line}"] = length
    return found


def by_file(found: dict[str, int]) -> dict[str, list[int]]:
    lengths: dict[str, list[int]] = {}
    for where, length in found.items():
        lengths.setdefault(where.rsplit(":", 1)[0], []).append(length)
    return {path: sorted(values, reverse=True) for path, values in sorted(lengths.items())}


def allowed(path: Path) -> dict[str, list[int]]:
    """The list: "<file> <length> <length>..." per line, longest first; # starts a comment."""
    listed = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        words = line.split("#", 1)[0].split()
        if words:
            listed[words[0]] = sorted((int(word) for word in words[1:]), reverse=True)
    return listed


def problems(found: dict[str, int], listed: dict[str, list[int]]) -> list[str]:
    lines = []
    for path, lengths in by_file(found).items():
        allowance = listed.get(path, [])
        if len(lengths) > len(allowance) or any(have > may for have, may in zip(lengths, allowance, strict=False)):
            where = ", ".join(f"{w.rsplit(':', 1)[1]} ({n})" for w, n in sorted(found.items())
                              if w.startswith(path + ":"))
            lines.append(f"{path}: Jinja expressions over {LIMIT} characters at lines {where}, more or longer than "
                         f"{ALLOW.name} allows ({allowance or 'none'}); fix: move the rule into a filter with a "
                         "unit test")
        elif len(lengths) < len(allowance):
            lines.append(f"{path}: {len(allowance) - len(lengths)} fewer long expressions than {ALLOW.name} lists; "
                         "fix: python tools/jinja_length.py --write")
    lines += [f"{path}: listed in {ALLOW.name} but has no long expression; fix: python tools/jinja_length.py --write"
              for path in sorted(set(listed) - set(by_file(found)))]
    return lines


HEADER = """# Jinja expressions in roles/ over 200 characters, still to move into filters: the list only shrinks
# (tools/jinja_length.py). <file> <length>... (longest first)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on an expression over the limit not listed")
    parser.add_argument("--write", action="store_true", help="rewrite the list from the roles as they are")
    args = parser.parse_args(argv)
    found = long_expressions(ROOT / "roles")
    if args.write:
        ALLOW.write_text(HEADER + "".join(f"{path} {' '.join(map(str, lengths))}\n"
                                          for path, lengths in by_file(found).items()))
        return 0
    if not args.check:
        for where, length in sorted(found.items(), key=lambda item: -item[1]):
            print(length, where)
        return 0
    lines = problems(found, allowed(ALLOW))
    print("\n".join(lines) or f"jinja_length: {len(found)} listed expressions over {LIMIT} characters, none new")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
