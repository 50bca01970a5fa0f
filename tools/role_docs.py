"""Render each role's meta/argument_specs.yml as a variable table in README.md, or check it is current.

A variable's default is written once, in the role's defaults/main.yml, and shown from there; the specs only
describe (a suboption's default, which has no variable of its own, stays in the spec).

The tables sit between `<!-- role-docs:begin -->` and `<!-- role-docs:end -->`; `--check` exits 1
when they differ from what the specs say, so the README and the validation never drift apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- role-docs:begin -->", "<!-- role-docs:end -->"


MARKUP = re.compile(r"\b[ICOPV]\(([^)]*)\)")


def _text(value) -> str:
    """One Markdown line: ansible-doc markup such as I(x) and C(x) becomes code spans."""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = MARKUP.sub(lambda m: f"`{m.group(1)}`", str(value))
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _default(option: dict, defaults: dict, name: str) -> str:
    if name in defaults:
        value = defaults[name]
    elif "default" in option:
        value = option["default"]
    else:
        return "required" if option.get("required") else ""
    if isinstance(value, str) and "{{" in value:
        return f"`{' '.join(value.split())}`"  # an expression: shown as written, on one line
    return f"`{json.dumps(value)}`"


def _rows(options: dict, defaults: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, option in options.items():
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        if option.get("choices"):
            kind += " (" + ", ".join(str(c) for c in option["choices"]) + ")"
        default = _default(option, defaults if not prefix else {}, name).replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {kind} | {default} | {_text(option.get('description', ''))} |")
        if option.get("options"):
            rows += _rows(option["options"], {}, f"{prefix}{name}[].")
    return rows


def render() -> str:
    parts = [BEGIN]
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        main = specs["main"]
        defaults = yaml.safe_load((spec_file.parent.parent / "defaults" / "main.yml").read_text()) or {}
        parts += [
            "",
            f"### `gymfleet.cluster.{role}`",
            "",
            _text(main.get("short_description", "")),
            "",
            *[f"- {_text(line)}" for line in main.get("description", [])],
            "",
            "| variable | type | default | description |",
            "| --- | --- | --- | --- |",
            *_rows(main.get("options", {}), defaults),
        ]
        entry_points = {name: spec for name, spec in specs.items() if name != "main"}
        if entry_points:
            parts += ["", "Entry points besides `main` (`tasks_from`):", ""]
            parts += [f"- `{name}`: {_text(spec.get('short_description', ''))}" for name, spec in entry_points.items()]
    parts += ["", END]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when README.md is out of date")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    updated = head + render() + tail
    if args.check:
        if updated != text:
            print("README.md role tables are out of date; fix: run `make docs`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
