"""The table of ``symbench params`` (counts come from :mod:`symbench.groups.params`)."""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text


def params_view(data: Mapping[str, Any]) -> Group:
    """A rich table of every layer's parameters, plus the chapter's headline ratio."""
    spec = data["input"]
    layers = data["layers"]
    title = (f"parameters for a {spec['n']}x{spec['n']}x{spec['c_in']} input: {spec['c_out']:,} filters of "
             f"{spec['k']}x{spec['k']}, {spec['outputs']:,} fully-connected units")
    table = Table(title=title)
    table.add_column("layer", no_wrap=True)
    table.add_column("input", no_wrap=True)
    for col in ("weights", "biases", "parameters", "output", "FC / this"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in layers:
        table.add_row(row["layer"], row["input"], f"{row['weights']:,}", f"{row['biases']:,}",
                      f"{row['parameters']:,}", row["output"], f"{row['fc_over_this']:,.0f}x")
    fc, conv = layers[0], layers[1]
    headline = Text(f"fully connected {fc['parameters']:,} vs convolution {conv['parameters']:,}: "
                    f"{data['fc_over_conv']:,.0f}x fewer parameters (one filter shared over translations).\n"
                    "A G-convolution shares it over rotations (and mirrors) too: |G| times the maps "
                    "for the same parameters.")
    return Group(table, headline)
