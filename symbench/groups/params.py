"""Parameter counts of a fully-connected layer, a convolution and p4/p4m G-convolutions (``symbench params``).

The exercise of the chapter on symmetry: for one input, how many parameters
does each kind of layer need? A fully-connected layer connects every input
value to every output; a convolution shares one small filter over all
translations; a G-convolution shares it over rotations (p4) and mirrors (p4m)
as well, so for the same parameters it gives ``|G|`` times the feature maps,
while ``|G|`` separate (unshared) filters would need ``|G|`` times the
parameters for the same maps.

Conventions (the chapter's): the fully-connected count is weights only unless
``fc_bias``; convolutions have one bias per output channel (shared over the
group in G-convolutions, as in Cohen & Welling's and GrouPy's layers) unless
``bias`` is off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from symbench.errors import SymbenchError

GROUP_ORDERS = {"p4": 4, "p4m": 8}


@dataclass(frozen=True)
class ParamsSpec:
    """The input and layer sizes to count for.

    Attributes
    ----------
    n : int
        Input side (``n x n`` images).
    c_in : int
        Input channels.
    c_out : int
        Filters (output channels) of the convolutions.
    outputs : int
        Units of the fully-connected layer.
    k : int
        Filter side.
    bias : bool
        One bias per output channel in the convolutions.
    fc_bias : bool
        One bias per unit in the fully-connected layer (the chapter counts weights only).
    """

    n: int = 32
    c_in: int = 1
    c_out: int = 32
    outputs: int = 1024
    k: int = 3
    bias: bool = True
    fc_bias: bool = False

    def __post_init__(self) -> None:
        for name in ("n", "c_in", "c_out", "outputs", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SymbenchError(f"{name} must be a positive integer, got {value!r}")
        if self.k > self.n:
            raise SymbenchError(f"the {self.k}x{self.k} filter does not fit in the {self.n}x{self.n} input; use k <= n")


#: Named inputs: the chapter's two examples.
PRESETS: dict[str, ParamsSpec] = {
    # 32x32 single-channel input; 1,024 FC units vs 32 3x3 filters with biases.
    "chapter": ParamsSpec(n=32, c_in=1, c_out=32, outputs=1024, k=3),
    # A 256 -> 256-channel 3x3 layer on 224x224 maps vs an FC layer to 256 units.
    "chapter-224": ParamsSpec(n=224, c_in=256, c_out=256, outputs=256, k=3),
}


@dataclass(frozen=True)
class LayerCount:
    """One layer's parameters and what it produces."""

    layer: str
    input: str
    weights: int
    biases: int
    output: str

    @property
    def parameters(self) -> int:
        return self.weights + self.biases

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parameters"] = self.parameters
        return d


def preset(name: str, **overrides: Any) -> ParamsSpec:
    """A preset with some fields replaced (``None`` values are ignored)."""
    try:
        spec = PRESETS[name]
    except KeyError:
        raise SymbenchError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return replace(spec, **given)
    except TypeError as exc:
        raise SymbenchError(str(exc)) from None


def count(spec: ParamsSpec) -> list[LayerCount]:
    """Every layer of the comparison, fully connected first, for the input of ``spec``."""
    n, ci, co, k = spec.n, spec.c_in, spec.c_out, spec.k
    image = f"{n}x{n}x{ci}"
    filt = co * ci * k * k
    b = co if spec.bias else 0
    rows = [
        LayerCount("fully connected", image, n * n * ci * spec.outputs,
                   spec.outputs if spec.fc_bias else 0, f"{spec.outputs:,} units"),
        LayerCount(f"convolution {k}x{k}", image, filt, b, f"{co:,} maps"),
    ]
    for group, G in GROUP_ORDERS.items():
        rows.append(LayerCount(f"{group} G-conv (lift)", image, filt, b, f"{co * G:,} maps ({co:,}x{G})"))
    for group, G in GROUP_ORDERS.items():
        rows.append(LayerCount(f"{G} unshared filters", image, G * filt, G * b, f"{co * G:,} maps ({co:,}x{G})"))
    for group, G in GROUP_ORDERS.items():
        rows.append(LayerCount(f"{group} G-conv (hidden)", f"{n}x{n}x{ci}x{G}", filt * G, b,
                               f"{co * G:,} maps ({co:,}x{G})"))
    return rows


def fc_ratio(rows: list[LayerCount]) -> float:
    """Parameters of the fully-connected layer over those of the convolution."""
    return rows[0].parameters / rows[1].parameters


def as_dict(spec: ParamsSpec, rows: list[LayerCount]) -> dict[str, Any]:
    """The JSON form of ``symbench params``."""
    fc = rows[0].parameters
    layers = []
    for row in rows:
        d = row.as_dict()
        d["fc_over_this"] = fc / row.parameters
        layers.append(d)
    return {"input": asdict(spec), "layers": layers, "fc_over_conv": fc_ratio(rows)}
