"""Tables for ``symbench kernels`` and ``symbench info``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text


_SHORT = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}


def kernels_table(infos: Sequence[Mapping[str, Any]]) -> Group:
    """The kernel table, then one line per unavailable kernel saying why."""
    table = Table(title="symbench kernels", show_lines=False)
    for col in ("name", "method", "ops", "dev", "dims", "dtypes", "library", "ok"):
        table.add_column(col, no_wrap=True)
    notes = []
    for info in infos:
        table.add_row(info["name"], info["method"], ",".join(info["ops"]), info["device"],
                      ",".join(map(str, info["dims"])), ",".join(_SHORT.get(d, d) for d in info["dtypes"]),
                      info["library"], "yes" if info["available"] else "no")
        if not info["available"]:
            notes.append(Text(f"{info['name']} is unavailable: {info['reason']}"))
    return Group(table, *notes)


def human_bytes(n: Any) -> str:
    """``34359738368`` -> ``32.0 GiB`` (binary units, as ``free -h`` prints them)."""
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} TiB"


def _human(key: str, value: Any) -> str:
    """A fact for people: 'none' for missing, GiB for byte counts; JSON output keeps raw values."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    last = key.rsplit(".", 1)[-1]
    if isinstance(value, (int, float)) and (last.startswith("memory") or last.endswith("bytes")
                                            or last.endswith("_mem") or last in ("l2_cache", "total_memory")):
        return human_bytes(value) if value > 0 else "unknown"
    if isinstance(value, float) and last.endswith("_s"):
        from symbench.render.text import fmt_seconds

        return fmt_seconds(value)
    return str(value)


def _flatten(prefix: str, value: Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list) and value and isinstance(value[0], Mapping):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, rows)
    elif isinstance(value, list):
        rows.append((prefix, ", ".join(map(str, value)) if value else "none"))
    else:
        rows.append((prefix, _human(prefix, value)))


def facts_table(facts: Mapping[str, Any]) -> Table:
    table = Table(title="symbench info", show_header=True)
    table.add_column("fact", no_wrap=True)
    table.add_column("value")
    rows: list[tuple[str, str]] = []
    _flatten("", facts, rows)
    for key, value in rows:
        table.add_row(key, value)
    return table


def preflight_table(pre: Mapping[str, Any]) -> Table:
    """The pre-flight checks (:func:`symbench.machine.noise.preflight`): value, and advice where one warns."""
    table = Table(title=f"pre-flight checks ({pre.get('warnings', 0)} warning"
                        f"{'' if pre.get('warnings', 0) == 1 else 's'})", show_header=True)
    table.add_column("check", no_wrap=True)
    table.add_column("value")
    table.add_column("advice")
    for name, check in (pre.get("checks") or {}).items():
        if check.get("status") == "unknown":
            table.add_row(name, "unknown", f"({check.get('reason')})")
        else:
            table.add_row(name, str(check.get("value")),
                          f"[bold]warning:[/bold] {check['advice']}" if check.get("advice") else "ok")
    return table
