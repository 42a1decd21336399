"""Print results as a table (default), JSON or YAML."""

from __future__ import annotations

import json
from typing import Callable, Sequence

import yaml

FORMATS = ("table", "json", "yaml")
Column = tuple[str, Callable[[dict], object]]


def render(data, fmt: str, columns: Sequence[Column] = ()) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
    rows = data if isinstance(data, list) else [data]
    return table(rows, columns)


def table(rows: list[dict], columns: Sequence[Column]) -> str:
    cells = [[header for header, _getter in columns]]
    cells += [[cell_text(getter(row)) for _header, getter in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("   ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells)


def cell_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(cell_text(item) for item in value) or "-"
    if isinstance(value, dict):
        return ",".join("%s=%s" % (key, cell_text(item)) for key, item in value.items()) or "-"
    return str(value)
