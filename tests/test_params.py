"""``symbench params``: the chapter's parameter counts."""

from __future__ import annotations

import json

import pytest

from symbench.errors import SymbenchError
from symbench.groups.params import PRESETS, ParamsSpec, as_dict, count, fc_ratio, preset


def _by_layer(spec: ParamsSpec) -> dict[str, int]:
    return {row.layer: row.parameters for row in count(spec)}


def test_chapter_exercise():
    rows = count(PRESETS["chapter"])
    fc, conv = rows[0], rows[1]
    assert (fc.weights, fc.biases, fc.parameters) == (1_048_576, 0, 1_048_576)  # 32*32 inputs x 1,024 units
    assert (conv.weights, conv.biases, conv.parameters) == (288, 32, 320)  # 32 filters of 3x3, + biases
    assert fc_ratio(rows) == pytest.approx(3276.8)
    by = _by_layer(PRESETS["chapter"])
    assert by["p4 G-conv (lift)"] == by["p4m G-conv (lift)"] == 320  # the same filters, shared over G
    assert by["4 unshared filters"] == 4 * 320 and by["8 unshared filters"] == 8 * 320
    assert by["p4 G-conv (hidden)"] == 32 * 4 * 9 + 32 and by["p4m G-conv (hidden)"] == 32 * 8 * 9 + 32
    outputs = {row.layer: row.output for row in rows}
    assert outputs["p4 G-conv (lift)"] == "128 maps (32x4)" and outputs["fully connected"] == "1,024 units"


def test_chapter_224_example():
    by = _by_layer(PRESETS["chapter-224"])
    assert by["fully connected"] == 224 * 224 * 256 * 256 == 3_288_334_336  # about 3.3 billion
    assert by["convolution 3x3"] == 256 * 256 * 9 + 256 == 590_080  # about 590K


def test_options_and_biases():
    spec = preset("chapter", n=28, c_in=3, c_out=16, outputs=10, k=5, bias=False, fc_bias=True)
    rows = count(spec)
    assert rows[0].weights == 28 * 28 * 3 * 10 and rows[0].biases == 10
    assert rows[1].parameters == 16 * 3 * 25 and rows[1].biases == 0
    assert preset("chapter", n=None).n == 32  # None means "keep the preset's"


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 0}, "k must be a positive integer"),
    ({"n": -3}, "n must be a positive integer"),
    ({"n": 4, "k": 5}, "does not fit"),
])
def test_bad_values(kwargs, match):
    with pytest.raises(SymbenchError, match=match):
        preset("chapter", **kwargs)


def test_unknown_preset():
    with pytest.raises(SymbenchError, match="unknown preset 'vgg'; allowed: chapter, chapter-224"):
        preset("vgg")


def test_json_form():
    data = as_dict(PRESETS["chapter"], count(PRESETS["chapter"]))
    assert data["input"]["n"] == 32 and data["fc_over_conv"] == pytest.approx(3276.8)
    assert data["layers"][1]["fc_over_this"] == pytest.approx(3276.8)
    assert {"layer", "input", "weights", "biases", "parameters", "output"} <= set(data["layers"][0])


def test_cli_default_prints_the_chapter_numbers(cli):
    res = cli("params")
    assert res.code == 0, res.err
    assert "1,048,576" in res.out and "320" in res.out and "3,277x" in res.out
    assert "…" not in res.out  # nothing truncated, even in a pipe


def test_cli_preset_and_json(cli):
    res = cli("params", "--preset", "chapter-224", "--json")
    data = json.loads(res.out)
    assert data["layers"][0]["parameters"] == 3_288_334_336 and data["layers"][1]["parameters"] == 590_080
    res = cli("params", "--n", "64", "--c-out", "8", "--no-bias", "--json")
    data = json.loads(res.out)
    assert data["layers"][0]["weights"] == 64 * 64 * 1024 and data["layers"][1]["parameters"] == 72


def test_cli_bad_input_exits_2(cli):
    res = cli("params", "--k", "0")
    assert res.code == 2 and res.err.strip().count("\n") == 0 and "k must be a positive integer" in res.err
    res = cli("params", "--preset", "nope")
    assert res.code == 2 and "allowed: chapter, chapter-224" in res.err
