"""Sweep configuration: TOML files, command-line overrides, the LIST syntax and validation.

A config holds measurement settings (``repeat``, ``min_time``, ...) and one or
more *grids*. Each grid is a cross product of problem axes and a set of
kernels. In TOML, keys at the top level apply to every ``[[grid]]`` table; a
file without ``[[grid]]`` tables is one grid::

    repeat = 7
    threads = 1

    [[grid]]
    name = "1-D"
    kernel = ["direct", "direct-numpy", "fft-pyfftw"]
    dim = 1
    n = "pow2:10:14"          # LIST: a,b,c | start:stop:step | pow2:lo:hi
    k = "3,5,9,17,33"

Command-line options override the file: a grid option (``--n``, ``--kernel``,
...) replaces that axis in every grid, a measurement option replaces the
setting.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

from symbench.defaults import DEFAULTS, PLANNERS
from symbench.errors import ConfigError, did_you_mean, join_problems
from symbench.problem import DIMS, DTYPES, GROUP_MODES, GROUP_ORDER, MODES, OPS, Problem

LIST_HELP = "a LIST is a,b,c or start:stop:step (stop inclusive) or pow2:lo:hi"

#: Axes used when a grid does not give them, by (op, dim).
DEFAULT_AXES: dict[tuple[str, int], dict[str, str]] = {
    ("conv", 1): {"n": "pow2:10:14", "k": "3,5,9,17,33,65,129,257"},
    ("conv", 2): {"n": "64,128,256", "k": "3,5,9,17,33"},
    ("lift", 2): {"n": "32,64", "k": "3,5,7"},
    ("gconv", 2): {"n": "32,64", "k": "3,5,7"},
}


# -- LIST syntax -----------------------------------------------------------------------

def _int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a number; {LIST_HELP}") from None
        if not as_float.is_integer():
            raise ConfigError(f"{name}: {text!r} is not a whole number; {LIST_HELP}") from None
        value = int(as_float)
    return value


def parse_int_list(value: Any, name: str) -> list[int]:
    """Parse a LIST of positive integers, sorted and without duplicates.

    Parameters
    ----------
    value : str, int or sequence
        ``"3,5,9"``, ``"3:21:2"`` (stop inclusive), ``"pow2:10:14"``, a mix of
        those separated by commas, an int, or a TOML list of any of these.
    name : str
        The option or key, for error messages.

    Raises
    ------
    ConfigError
        For anything that is not a positive whole number.
    """
    items: list[Any]
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a number; {LIST_HELP}")
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, bool):
            raise ConfigError(f"{name}: {item!r} is not a number; {LIST_HELP}")
        if isinstance(item, int):
            out.append(item)
            continue
        if isinstance(item, float):
            out.append(_int(repr(item), name))
            continue
        text = str(item).strip()
        if not text:
            raise ConfigError(f"{name}: empty value; {LIST_HELP}")
        for part in (p.strip() for p in text.split(",")):
            if not part:
                raise ConfigError(f"{name}: empty item in {text!r}; {LIST_HELP}")
            out.extend(_parse_part(part, name))
    for v in out:
        if v < 1:
            raise ConfigError(f"{name}: {v} is not positive; values must be >= 1")
    if not out:
        raise ConfigError(f"{name}: no values; {LIST_HELP}")
    return sorted(set(out))


def _parse_part(part: str, name: str) -> list[int]:
    pieces = part.split(":")
    if pieces[0].strip().lower() == "pow2":
        if len(pieces) != 3:
            raise ConfigError(f"{name}: {part!r} should be pow2:lo:hi; {LIST_HELP}")
        lo, hi = (_int(p.strip(), name) for p in pieces[1:])
        if lo < 0 or hi < lo or hi > 40:
            raise ConfigError(f"{name}: {part!r} needs 0 <= lo <= hi <= 40")
        return [2**e for e in range(lo, hi + 1)]
    if len(pieces) == 1:
        return [_int(part, name)]
    if len(pieces) not in (2, 3):
        raise ConfigError(f"{name}: {part!r} is not a range; {LIST_HELP}")
    start, stop = _int(pieces[0].strip(), name), _int(pieces[1].strip(), name)
    step = _int(pieces[2].strip(), name) if len(pieces) == 3 else 1
    if step < 1:
        raise ConfigError(f"{name}: step of {part!r} must be >= 1")
    if stop < start:
        raise ConfigError(f"{name}: range {part!r} has stop < start")
    if (stop - start) // step > 100_000:
        raise ConfigError(f"{name}: range {part!r} has more than 100000 values")
    return list(range(start, stop + 1, step))


def parse_choice_list(value: Any, name: str, allowed: Sequence[str]) -> list[str]:
    """A comma list (or TOML list) of names, each one of ``allowed``, in the given order."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        for part in (p.strip() for p in str(item).split(",")):
            if not part:
                continue
            if part not in allowed:
                raise ConfigError(f"{name}: unknown value {part!r}; allowed: {', '.join(allowed)}")
            if part not in out:
                out.append(part)
    if not out:
        raise ConfigError(f"{name}: no values; allowed: {', '.join(allowed)}")
    return out


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a whole number >= 1") from None
    if value < 1:
        raise ConfigError(f"{name}: {value} is not positive; it must be an integer >= 1")
    return value


def _positive_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number; give seconds, e.g. 0.005") from None
    if isinstance(value, bool) or not math.isfinite(out) or out <= 0:
        raise ConfigError(f"{name}: {value!r} must be a positive number of seconds")
    return out


# -- the config ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """One cross product of problem axes, with the kernels to run on it."""

    name: str = "grid"
    kernel: tuple[str, ...] = ()  # names or globs; empty: every available kernel of the op
    op: str = "conv"
    group: tuple[str, ...] = ("none",)
    dim: int = 1
    n: tuple[int, ...] = ()
    k: tuple[int, ...] = ()
    dtype: tuple[str, ...] = ("float64",)
    mode: tuple[str, ...] = ("full",)
    batch: int = 1
    c_in: int = 1
    c_out: int = 1
    threads: tuple[int, ...] = (1,)

    def problems(self) -> Iterator[Problem]:
        """Every problem of the grid; k varies fastest and ascends (``--max-call`` relies on it)."""
        for group, dtype, mode, threads, n, k in itertools.product(
                self.group, self.dtype, self.mode, self.threads, self.n, self.k):
            yield Problem(op=self.op, group=group, dim=self.dim, n=n, k=k, batch=self.batch,
                          c_in=self.c_in, c_out=self.c_out, dtype=dtype, mode=mode, threads=threads)

    def size(self) -> int:
        return (len(self.group) * len(self.dtype) * len(self.mode) * len(self.threads)
                * len(self.n) * len(self.k))


GRID_KEYS = tuple(f.name for f in fields(Grid))
SETTING_KEYS = ("repeat", "rounds", "min_time", "max_call", "adaptive", "seed", "planner", "flush_l2")


@dataclass(frozen=True)
class SweepConfig:
    """A resolved sweep: grids plus measurement settings.

    Attributes
    ----------
    grids : tuple of Grid
    repeat : int
        Samples per measurement (per round).
    rounds : int
        How many times every (kernel, problem) is measured, each round in a
        fresh worker process and over the whole grid before the next round
        (1: one round, in this process).
    min_time : float
        Shortest sample, in seconds (autorange target).
    max_call : float
        Once one call takes longer than this, larger k of that kernel and
        series are not run (status ``timeout``).
    adaptive : bool
        Search k* instead of measuring every k.
    seed : int
        Seed of the random inputs.
    planner : str
        FFTW planner effort.
    flush_l2 : bool
        Evict the GPU L2 cache before each call.
    source : str
        Where the config came from (a path, or ``"command line"``).
    """

    grids: tuple[Grid, ...]
    repeat: int = DEFAULTS["repeat"]
    rounds: int = DEFAULTS["rounds"]
    min_time: float = DEFAULTS["min_time"]
    max_call: float = DEFAULTS["max_call"]
    adaptive: bool = DEFAULTS["adaptive"]
    seed: int = DEFAULTS["seed"]
    planner: str = DEFAULTS["planner"]
    flush_l2: bool = DEFAULTS["flush_l2"]
    source: str = "command line"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``run.json``."""
        out: dict[str, Any] = {k: getattr(self, k) for k in SETTING_KEYS}
        out["source"] = self.source
        out["grids"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in
                         ((f, getattr(g, f)) for f in GRID_KEYS)} for g in self.grids]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepConfig":
        """Rebuild a config stored by :meth:`to_dict` (validating it again)."""
        try:
            settings = {k: data[k] for k in SETTING_KEYS if k in data}
            grids = [_grid_from_mapping(g, f"grid {i + 1}") for i, g in enumerate(data["grids"])]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"stored config is not a symbench config ({exc})") from None
        return _settings(grids, settings, str(data.get("source", "run.json")))

    def comparable(self) -> dict[str, Any]:
        """What must match for ``--resume`` (everything but where it came from)."""
        d = self.to_dict()
        d.pop("source")
        return d

    def jobs(self) -> list[tuple[Problem, tuple[str, ...]]]:
        """Problems in order with the kernel patterns of their grid; repeats across grids merged."""
        seen: dict[Problem, list[str]] = {}
        for grid in self.grids:
            for problem in grid.problems():
                names = seen.setdefault(problem, [])
                for pattern in grid.kernel:
                    if pattern not in names:
                        names.append(pattern)
        return [(p, tuple(names)) for p, names in seen.items()]


def _key_name(where: str, key: str, cli: Collection[str] = ()) -> str:
    """How to name a setting in a message: ``--c-in`` on the command line, ``FILE: c_in`` in a file.

    ``cli`` holds the keys whose value came from the command line (an option
    given with ``--config`` overrides the file's value, so it is named as the option).
    """
    if where == "command line" or key in cli:
        return f"--{key.replace('_', '-')}"
    return f"{where}: {key}"


class _Problems:
    """Collects :class:`ConfigError` messages so that a config reports every problem at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, fn: Any, *args: Any, default: Any = None) -> Any:
        try:
            return fn(*args)
        except ConfigError as exc:
            if exc.message not in self.messages:
                self.messages.append(exc.message)
            return default

    def add(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)

    def raise_any(self) -> None:
        if self.messages:
            raise ConfigError(join_problems(self.messages))


def _unknown_keys(keys: Iterable[str], allowed: Collection[str], where: str) -> list[str]:
    return [f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}; allowed: {', '.join(sorted(allowed))}"
            for key in sorted(set(keys) - set(allowed))]


def _check_names(value: Any, name: str, allowed: str) -> None:
    """A TOML value that must be a string or a list of strings, and not empty."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{name}: {value!r} is not a string or a list of strings; give {allowed}")
    if isinstance(value, str) and not value.strip() or any(not v.strip() for v in items):
        raise ConfigError(f"{name}: empty name; give {allowed}")


def _grid_from_mapping(data: Mapping[str, Any], where: str, cli: Collection[str] = (),
                       problems: _Problems | None = None) -> Grid:
    own = problems is None
    problems = problems if problems is not None else _Problems()
    for message in _unknown_keys(data, GRID_KEYS, where):
        problems.add(message)

    def name(key: str) -> str:
        return _key_name(where, key, cli)

    if not isinstance(data.get("op", "conv"), str):
        raise ConfigError(f"{name('op')}: {data['op']!r} is not a string; allowed: {', '.join(OPS)}")
    op = str(data.get("op", "conv"))
    if op not in OPS:
        problems.add(f"{name('op')}: {op!r} is not supported{did_you_mean(op, OPS)}; allowed: {', '.join(OPS)}")
        op = "conv"  # keep checking the other keys against the default op
    dim = data.get("dim", 2 if op != "conv" else 1)
    try:
        dim = int(dim)
    except (TypeError, ValueError):
        problems.add(f"{name('dim')}: {dim!r} is not supported; allowed: 1, 2")
        dim = 2 if op != "conv" else 1
    if dim not in DIMS:
        problems.add(f"{name('dim')}: {dim} is not supported; allowed: 1, 2")
        dim = 2 if op != "conv" else 1
    defaults = DEFAULT_AXES.get((op, dim))
    if defaults is None:
        problems.add(f"{name('op')}: {op} is 2-D only; use dim 2")
        dim = 2
        defaults = DEFAULT_AXES[(op, dim)]
    groups = [g for g in GROUP_ORDER if g != "none"] if op != "conv" else ["none"]
    group_default = "p4" if op != "conv" else "none"
    mode_default = "valid" if op != "conv" else "full"
    kernel = data.get("kernel", ())
    _check_names(kernel, name("kernel"), "kernel names, e.g. \"direct-numpy\" or [\"fft-*\"]")
    for key in ("group", "dtype", "mode"):
        if key in data:
            _check_names(data[key], name(key), f"a {key} name or a list of them")
    if "name" in data and not isinstance(data["name"], str):
        raise ConfigError(f"{name('name')}: {data['name']!r} is not a string")
    kernel = tuple(p.strip() for item in ([kernel] if isinstance(kernel, str) else kernel)
                   for p in str(item).split(",") if p.strip())
    check = problems.check
    grid = Grid(
        name=str(data.get("name", where)),
        kernel=kernel,
        op=op,
        group=tuple(check(parse_choice_list, data.get("group", group_default), name("group"), groups,
                          default=[group_default])),
        dim=dim,
        n=tuple(check(parse_int_list, data.get("n", defaults["n"]), name("n"), default=[])),
        k=tuple(check(parse_int_list, data.get("k", defaults["k"]), name("k"), default=[])),
        dtype=tuple(check(parse_choice_list, data.get("dtype", "float64"), name("dtype"), DTYPES,
                          default=["float64"])),
        mode=tuple(check(parse_choice_list, data.get("mode", mode_default), name("mode"),
                         MODES if op == "conv" else GROUP_MODES, default=[mode_default])),
        batch=check(_positive_int, data.get("batch", 1), name("batch"), default=1),
        c_in=check(_positive_int, data.get("c_in", 1), name("c_in"), default=1),
        c_out=check(_positive_int, data.get("c_out", 1), name("c_out"), default=1),
        threads=tuple(check(parse_int_list, data.get("threads", 1), name("threads"), default=[1])),
    )
    # Build every problem now so that a bad combination (k > n in a valid
    # group layer, say) fails before anything is measured.
    if not problems.messages:
        for _ in grid.problems():
            pass
    if own:
        problems.raise_any()
    return grid


def _settings(grids: list[Grid], settings: Mapping[str, Any], source: str, cli: Collection[str] = (),
              problems: _Problems | None = None) -> SweepConfig:
    problems = problems if problems is not None else _Problems()

    def name(key: str) -> str:
        return _key_name(source, key, cli)

    if not grids:
        problems.add(f"{source}: no grid to sweep; add a [[grid]] table with n and k")
    for key in ("adaptive", "flush_l2"):
        if key in settings and not isinstance(settings[key], bool):
            problems.add(f"{name(key)}: {settings[key]!r} is not true or false")
    if not isinstance(settings.get("planner", DEFAULTS["planner"]), str):
        problems.add(f"{name('planner')}: {settings['planner']!r} is not a string; allowed: {', '.join(PLANNERS)}")
    planner = str(settings.get("planner", DEFAULTS["planner"]))
    if planner not in PLANNERS:
        problems.add(f"{name('planner')}: {planner!r} is not supported{did_you_mean(planner, PLANNERS)}; "
                     f"allowed: {', '.join(PLANNERS)}")
    seed = settings.get("seed", DEFAULTS["seed"])
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = int(str(seed).strip())
        except ValueError:
            problems.add(f"{name('seed')}: {seed!r} is not a whole number >= 0")
            seed = 0
    if seed < 0:
        problems.add(f"{name('seed')}: {seed} must be >= 0")
    repeat = problems.check(_positive_int, settings.get("repeat", DEFAULTS["repeat"]), name("repeat"),
                            default=DEFAULTS["repeat"])
    rounds = problems.check(_positive_int, settings.get("rounds", DEFAULTS["rounds"]), name("rounds"),
                            default=DEFAULTS["rounds"])
    min_time = problems.check(_positive_float, settings.get("min_time", DEFAULTS["min_time"]), name("min_time"),
                              default=DEFAULTS["min_time"])
    max_call = problems.check(_positive_float, settings.get("max_call", DEFAULTS["max_call"]), name("max_call"),
                              default=DEFAULTS["max_call"])
    problems.raise_any()
    return SweepConfig(
        grids=tuple(grids),
        repeat=repeat,
        rounds=rounds,
        min_time=min_time,
        max_call=max_call,
        adaptive=bool(settings.get("adaptive", DEFAULTS["adaptive"])),
        seed=seed,
        planner=planner,
        flush_l2=bool(settings.get("flush_l2", DEFAULTS["flush_l2"])),
        source=source,
    )


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); TOML config files must be UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def config_from_mapping(data: Mapping[str, Any], source: str,
                        overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """Build a config from parsed TOML plus command-line overrides (which win).

    Every problem (unknown keys, with a "did you mean", and bad values in any
    grid or setting) is reported in one :class:`ConfigError`.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    allowed = set(GRID_KEYS) | set(SETTING_KEYS) | {"grid"}
    problems = _Problems()
    for message in _unknown_keys(data, allowed, source):
        problems.add(message)
    shared = {k: v for k, v in data.items() if k in GRID_KEYS}
    tables = data.get("grid", [{}])
    if isinstance(tables, Mapping):
        tables = [tables]
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        problems.add(f"{source}: 'grid' must be a list of tables ([[grid]])")
        tables = [{}]
    grid_over = {k: v for k, v in overrides.items() if k in GRID_KEYS}
    grids = []
    for i, table in enumerate(tables):
        merged = {**shared, **table, **grid_over}
        where = f"{source} [grid {i + 1}]" if len(tables) > 1 else source
        grids.append(_grid_from_mapping(merged, where, cli=grid_over.keys(), problems=problems))
    settings = {k: v for k, v in data.items() if k in SETTING_KEYS}
    settings.update({k: v for k, v in overrides.items() if k in SETTING_KEYS})
    return _settings(grids, settings, source, cli=overrides.keys(), problems=problems)


def configs_dir() -> Path:
    """The bundled ``configs/`` directory (next to the package in a checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "configs"):
        if candidate.is_dir():
            return candidate
    return here.parent / "configs"


def bundled_configs_dir() -> Path:
    """The configs shipped inside the package (``symbench/configs``), installed or not."""
    return Path(__file__).resolve().parent / "configs"


def find_config(name: str | Path) -> Path:
    """A config path as given, or a bundled one by name.

    ``builtin:ci`` always names the packaged ``ci.toml``, whatever files or
    folders the working directory holds (the form for CI recipes). A bare name
    (``quick``) is a bundled config when one exists, even if a folder of that
    name is in the working directory; otherwise it is a path.
    """
    text = str(name)
    if text.startswith("builtin:"):
        stem = text[len("builtin:"):]
        path = bundled_configs_dir() / f"{stem}.toml"
        if not path.is_file():
            names = sorted(p.stem for p in bundled_configs_dir().glob("*.toml"))
            raise ConfigError(f"no bundled config {stem!r}{did_you_mean(stem, names)}; "
                              f"bundled: {', '.join('builtin:' + n for n in names)}")
        return path
    path = Path(name)
    if path.is_file() or path.suffix or len(path.parts) > 1:
        return path
    bundled = configs_dir() / f"{name}.toml"
    if bundled.exists():
        return bundled
    if path.exists():
        return path
    names = sorted(p.stem for p in configs_dir().glob("*.toml"))
    raise ConfigError(f"config {str(name)!r} does not exist{did_you_mean(text, names)}; "
                      f"bundled configs: {', '.join(names)}")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """The sweep's config.

    With ``path``, that file plus ``overrides``. Without it, a grid option in
    ``overrides`` makes a single grid from the built-in defaults; otherwise
    ``configs/default.toml`` is used, with the measurement settings overridden.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if path is not None:
        p = find_config(path)
        data = read_toml(p)
        config = config_from_mapping(data, str(p), overrides)
        # Checked last, so that a bad setting is named first. A file that names
        # no grid used to sweep the built-in defaults, which is never what a
        # file with a typo'd or missing table meant.
        if "grid" not in data and not any(k in data for k in ("n", "k")):
            raise ConfigError(f"{p}: {'empty config' if not data else 'no [[grid]] table'}; add a [[grid]] "
                              "table with n and k (see configs/quick.toml), or give --n and --k without --config")
        return config
    if any(k in GRID_KEYS for k in overrides):
        return config_from_mapping({}, "command line", overrides)
    p = configs_dir() / "default.toml"
    return config_from_mapping(read_toml(p), str(p), overrides)


def with_settings(config: SweepConfig, **settings: Any) -> SweepConfig:
    return replace(config, **settings)
