"""Config parsing: the LIST syntax, TOML files, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbench.config import configs_dir, load_config, parse_choice_list, parse_int_list
from symbench.errors import ConfigError


@pytest.mark.parametrize("text, expected", [
    ("3,5,9", [3, 5, 9]),
    ("9,3,5,3", [3, 5, 9]),
    ("3:21:2", [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]),
    ("3:515:8", list(range(3, 516, 8))),
    ("4:6", [4, 5, 6]),
    ("pow2:2:5", [4, 8, 16, 32]),
    ("3,pow2:4:5,100", [3, 16, 32, 100]),
    (" 7 ", [7]),
    (12, [12]),
    ([1, "pow2:3:3", 2], [1, 2, 8]),
    ("2e3", [2000]),
])
def test_int_list(text, expected):
    assert parse_int_list(text, "--n") == expected


@pytest.mark.parametrize("text, fragment", [
    ("abc", "not a number"),
    ("-5", "not positive"),
    ("0", "not positive"),
    ("3,,5", "empty item"),
    ("1.5", "not a whole number"),
    ("9:3", "stop < start"),
    ("3:9:0", "step"),
    ("pow2:5", "pow2:lo:hi"),
    ("1:2:3:4", "not a range"),
    (True, "not a number"),
])
def test_int_list_errors(text, fragment):
    with pytest.raises(ConfigError) as err:
        parse_int_list(text, "--k")
    assert fragment in str(err.value)
    assert str(err.value).startswith("--k")
    assert "\n" not in str(err.value)


def test_choice_list():
    assert parse_choice_list("float32,float64", "dtype", ("float32", "float64")) == ["float32", "float64"]
    with pytest.raises(ConfigError, match="allowed: float32, float64"):
        parse_choice_list("float7", "dtype", ("float32", "float64"))


def test_bundled_configs_load():
    names = {p.stem for p in configs_dir().glob("*.toml")}
    assert {"default", "quick", "paper-1d", "paper-2d"} <= names
    for name in names:
        cfg = load_config(configs_dir() / f"{name}.toml")
        assert cfg.jobs()


def test_paper_grids():
    one = load_config("paper-1d")
    g = one.grids[0]
    assert g.n == tuple(2**e for e in range(10, 21))
    assert g.k == tuple(2**e for e in range(1, 12))
    assert set(g.dtype) == {"float32", "float64"}
    two = load_config("paper-2d").grids[0]
    assert min(two.n) == 64 and max(two.n) == 2048 and min(two.k) == 3 and max(two.k) == 63


def test_default_used_without_grid_options():
    cfg = load_config(None, {"repeat": "3"})
    assert cfg.source.endswith("default.toml")
    assert cfg.repeat == 3
    assert len(cfg.grids) == 2


def test_cli_grid_without_config_is_one_grid():
    cfg = load_config(None, {"kernel": ["direct,fft-scipy"], "n": "1024,16384", "k": "3,9"})
    assert len(cfg.grids) == 1
    g = cfg.grids[0]
    assert g.kernel == ("direct", "fft-scipy")
    assert g.n == (1024, 16384) and g.k == (3, 9)
    assert g.dtype == ("float64",) and g.mode == ("full",) and g.dim == 1
    assert len(cfg.jobs()) == 4


def test_group_op_defaults():
    cfg = load_config(None, {"op": "lift", "n": "32", "k": "3"})
    g = cfg.grids[0]
    assert (g.dim, g.mode, g.group) == (2, ("valid",), ("p4",))


def test_overrides_apply_to_every_grid(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('repeat = 5\nthreads = 1\n[[grid]]\nn = "64"\nk = "3"\n[[grid]]\ndim = 2\nn = "32"\nk = "5"\n')
    cfg = load_config(f, {"k": "7,9", "repeat": "2"})
    assert [g.k for g in cfg.grids] == [(7, 9), (7, 9)]
    assert cfg.repeat == 2
    assert [g.n for g in cfg.grids] == [(64,), (32,)]


def test_jobs_merge_repeated_problems(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[[grid]]\nkernel = "direct"\nn = "64"\nk = "3"\n[[grid]]\nkernel = ["fft-scipy", "direct"]\nn = "64"\nk = "3"\n')
    jobs = load_config(f).jobs()
    assert len(jobs) == 1
    assert jobs[0][1] == ("direct", "fft-scipy")


def test_k_ascends_within_a_series():
    cfg = load_config(None, {"n": "64,32", "k": "9,3,5"})
    ks = [(p.n, p.k) for p, _ in cfg.jobs()]
    assert ks == [(32, 3), (32, 5), (32, 9), (64, 3), (64, 5), (64, 9)]


@pytest.mark.parametrize("text, fragment", [
    ("this is = = not toml\n[", "not valid TOML"),
    ("bogus = 1\n", "unknown key 'bogus'"),
    ("[[grid]]\nn = 'x'\n", "not a number"),
    ("[[grid]]\nmode = 'middle'\n", "allowed: full, same, valid"),
    ("[[grid]]\ndtype = 'float7'\n", "unknown value 'float7'"),
    ("[[grid]]\ndim = 3\n", "dim: 3"),
    ("repeat = 0\n", "repeat"),
    ("min_time = -1\n", "min_time"),
    ("planner = 'fast'\n", "planner"),
    ("[[grid]]\nop = 'lift'\ngroup = 'p6'\n", "p6"),
    ("[[grid]]\nflavour = 1\n", "unknown key 'flavour'"),
])
def test_bad_toml(tmp_path: Path, text: str, fragment: str):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert fragment in str(err.value)


@pytest.mark.parametrize("override, named", [
    ({"planner": "fast"}, "--planner: 'fast'"),
    ({"repeat": "-1"}, "--repeat: -1"),
    ({"min_time": "0"}, "--min-time: '0'"),
    ({"dtype": "float16"}, "--dtype: unknown value 'float16'"),
])
def test_a_bad_override_is_named_as_its_option(tmp_path: Path, override: dict, named: str):
    # The bad value came from the command line, not from the file the message would otherwise name.
    f = tmp_path / "good.toml"
    f.write_text('repeat = 3\n[[grid]]\nn = "64"\nk = "3"\n')
    with pytest.raises(ConfigError) as err:
        load_config(f, override)
    assert str(err.value).startswith(named)
    assert "good.toml" not in str(err.value)


def test_toml_error_names_file_and_line(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text("repeat = 3\nthis is = = not toml\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert "bad.toml" in str(err.value) and "line 2" in str(err.value)


def test_missing_config():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/x.toml")
    with pytest.raises(ConfigError, match="bundled configs: .*default"):
        load_config("no-such-name")


def test_roundtrip_through_dict():
    from symbench.config import SweepConfig

    cfg = load_config("quick")
    again = SweepConfig.from_dict(cfg.to_dict())
    assert again.comparable() == cfg.comparable()
    assert again.jobs() == cfg.jobs()
