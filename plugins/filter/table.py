"""Render rows of dicts as an aligned plain-text table, for status output in a terminal or a log."""

from __future__ import annotations


def text_table(rows: list[dict], columns: list[str], headers: list[str] | None = None) -> str:
    """A table with one header line and one line per row; missing values show as '-'."""
    headers = headers or [c.upper() for c in columns]
    if len(headers) != len(columns):
        raise ValueError("text_table: headers and columns must have the same length")
    cells = [["-" if row.get(col) in (None, "") else str(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {"text_table": text_table}
