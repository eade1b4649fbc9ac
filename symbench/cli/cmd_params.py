"""``symbench params``: parameter counts of FC, convolution and G-convolution layers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from symbench.cli.app import app, console, print_json


@app.command("params")
def params_cmd(
    preset: Annotated[str, typer.Option("--preset", help="Starting sizes: 'chapter' (32x32x1 input, 1,024 FC units, 32 3x3 filters) or 'chapter-224' (224x224x256 input, 256 FC units, 256 3x3 filters).")] = "chapter",
    n: Annotated[Optional[int], typer.Option("--n", help="Input side (n x n images).")] = None,
    c_in: Annotated[Optional[int], typer.Option("--c-in", help="Input channels.")] = None,
    c_out: Annotated[Optional[int], typer.Option("--c-out", help="Filters (output channels) of the convolutions.")] = None,
    outputs: Annotated[Optional[int], typer.Option("--outputs", help="Units of the fully-connected layer.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Filter side.")] = None,
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="One bias per output channel in the convolutions.")] = True,
    fc_bias: Annotated[bool, typer.Option("--fc-bias", help="Count the fully-connected layer's biases too (the chapter counts weights only).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> int:
    """Parameters of a fully-connected layer, a convolution and p4/p4m G-convolutions for the same input.

    The defaults are the chapter's exercise: a 32x32 single-channel input to
    1,024 fully-connected units is 1,048,576 weights; 32 filters of 3x3 with
    biases are 320 parameters (about 3,277x fewer).
    """
    from symbench.groups.params import as_dict, count, preset as make_spec

    spec = make_spec(preset, n=n, c_in=c_in, c_out=c_out, outputs=outputs, k=k, bias=bias, fc_bias=fc_bias)
    data = as_dict(spec, count(spec))
    if as_json:
        print_json(data)
        return 0
    from symbench.render.params import params_view

    console().print(params_view(data))
    return 0
