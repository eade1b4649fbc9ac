"""Tables for ``symbench kernels`` and ``symbench info``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.table import Table


def kernels_table(infos: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="symbench kernels", show_lines=False)
    for col in ("name", "method", "ops", "device", "library", "dims", "dtypes", "available"):
        table.add_column(col, no_wrap=col in ("name", "library"))
    for info in infos:
        avail = "yes" if info["available"] else f"no: {info['reason']}"
        table.add_row(info["name"], info["method"], ",".join(info["ops"]), info["device"], info["library"],
                      ",".join(f"{d}-D" for d in info["dims"]), ",".join(info["dtypes"]), avail)
    return table


def _flatten(prefix: str, value: Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list) and value and isinstance(value[0], Mapping):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, rows)
    else:
        rows.append((prefix, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))


def facts_table(facts: Mapping[str, Any]) -> Table:
    table = Table(title="symbench info", show_header=True)
    table.add_column("fact", no_wrap=True)
    table.add_column("value")
    rows: list[tuple[str, str]] = []
    _flatten("", facts, rows)
    for key, value in rows:
        table.add_row(key, value)
    return table
