"""Figures of a run (matplotlib, the ``plot`` extra; imported only when a figure is made).

Three kinds, per series (machine, device, op, group, dim, dtype, mode, batch,
channels, threads):

* ``time``: time per call vs k on log-log axes, one panel per n, one line per
  kernel, k\\* marked;
* ``kstar``: k\\* vs n for each (direct, fft) pair, the bracket as an error bar,
  and the chapter's rule k = log2 n drawn (1-D);
* ``winners``: the fastest kernel over the (n, k) grid.

Figures must survive black-and-white printing: kernels differ by marker and
line style (direct solid, fft dashed, auto dotted), winner cells by hatching
and a text code, never by colour alone. Nothing here computes results: the
crossover table comes from :mod:`symbench.analysis.crossover`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from symbench.analysis.crossover import SERIES_COLUMNS
from symbench.analysis.data import ok_rows, series_label
from symbench.errors import SymbenchError

KINDS = ("all", "time", "kstar", "winners")
FORMATS = (".png", ".svg", ".pdf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
_LINESTYLES = {"direct": "-", "fft": "--", "auto": ":"}
_HATCHES = ("", "///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||", "**")
_GREYS = ("0.95", "0.75", "0.55", "0.85", "0.65", "0.45", "0.9", "0.7", "0.6", "0.8")
# Colour helps on screen; markers, line styles and hatching carry the meaning in print.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_PANEL_W, _PANEL_H, _NCOLS = 3.6, 2.9, 4


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SymbenchError("plots need matplotlib, which is not installed; "
                            "install the plot extra: pip install 'symbench[plot]'") from None


def kernel_styles(kernels: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Marker, line style and a short code (D1, F2, A1) for every kernel (``kernel``, ``method``)."""
    styles: dict[str, dict[str, Any]] = {}
    counters: dict[str, int] = {}
    pairs = kernels[["kernel", "method"]].drop_duplicates().sort_values(["method", "kernel"])
    for i, (name, method) in enumerate(zip(pairs["kernel"], pairs["method"])):
        counters[method] = counters.get(method, 0) + 1
        styles[name] = {"marker": _MARKERS[i % len(_MARKERS)], "linestyle": _LINESTYLES.get(method, "-."),
                        "code": f"{method[:1].upper()}{counters[method]}",
                        "hatch": _HATCHES[i % len(_HATCHES)], "grey": _GREYS[i % len(_GREYS)],
                        "color": _COLORS[i % len(_COLORS)]}
    return styles


def _n_label(dim: int) -> str:
    return "n (signal length)" if dim == 1 else "n (image side; n x n)"


def _k_label(dim: int) -> str:
    return "k (kernel length)" if dim == 1 else "k (kernel side; k x k)"


def _series_frames(df: pd.DataFrame, cross: pd.DataFrame) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    data = ok_rows(df)
    keys = list(SERIES_COLUMNS)
    out = []
    for key, g in data.groupby(keys, sort=True, dropna=False):
        if len(cross):
            mask = np.ones(len(cross), dtype=bool)
            for c, v in zip(keys, key):
                mask &= (cross[c].astype(str) == str(v)).to_numpy()
            c_g = cross[mask]
        else:
            c_g = cross
        label = series_label(g.iloc[0].to_dict())
        if str(key[1]) != "cpu":
            label += f" on {key[1]}"
        if data["machine_id"].nunique() > 1:
            label += f" [{g['machine'].iloc[0]}]"
        out.append((label, g, c_g))
    return out


def _marked_pairs(c_n: pd.DataFrame, g_n: pd.DataFrame) -> pd.DataFrame:
    """Crossovers worth a mark in one time-vs-k panel: all of them when few, else the fastest pair."""
    c_n = c_n[np.isfinite(c_n["k_star"].to_numpy(dtype=float))]
    if len(c_n) <= 3:
        return c_n
    kmin, kmax = g_n["k"].min(), g_n["k"].max()
    d = g_n[(g_n["method"] == "direct") & (g_n["k"] == kmin)]
    f = g_n[(g_n["method"] == "fft") & (g_n["k"] == kmax)]
    if len(d) and len(f):
        best = c_n[(c_n["direct_kernel"] == d.loc[d["time_s"].idxmin(), "kernel"])
                   & (c_n["fft_kernel"] == f.loc[f["time_s"].idxmin(), "kernel"])]
        if len(best):
            return best
    return c_n.head(1)


def plot_time_vs_k(ax: Any, g_n: pd.DataFrame, c_n: pd.DataFrame, styles: dict[str, dict[str, Any]],
                   legend: bool = True) -> None:
    """Time per call vs k (log-log) at one n; one line per kernel; k* as vertical lines."""
    for name, kr in g_n.groupby("kernel", sort=True):
        kr = kr.sort_values("k")
        st = styles[name]
        ax.plot(kr["k"], kr["time_s"], marker=st["marker"], linestyle=st["linestyle"], markersize=4,
                linewidth=1.2, label=f"{st['code']} {name}", color=st["color"],
                markerfacecolor="none" if st["linestyle"] == "--" else st["color"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    dim = int(g_n["dim"].iloc[0])
    ax.set_xlabel(_k_label(dim))
    ax.set_ylabel("time per call (s)")
    ax.set_title(f"n = {int(g_n['n'].iloc[0])}", fontsize=10)
    for i, r in enumerate(_marked_pairs(c_n, g_n).to_dict("records")):
        ax.axvline(r["k_star"], color="black", linestyle=(0, (1, 2 + i)), linewidth=1)
        code = f"{styles[r['direct_kernel']]['code']}/{styles[r['fft_kernel']]['code']}"
        ax.annotate(f"k*={r['k_star']:.3g} {code}",
                    xy=(r["k_star"], 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3 - 9 * i),
                    textcoords="offset points", va="top", fontsize=6)
    ax.grid(True, which="major", linewidth=0.3, color="0.8")
    if legend:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def plot_kstar_vs_n(ax: Any, c_s: pd.DataFrame, dim: int, styles: dict[str, dict[str, Any]] | None = None) -> None:
    """k* vs n per pair, bracket as error bar; open triangles for fft_always / direct_always.

    A pair is drawn with its fft kernel's marker and a line style (and colour) per direct
    kernel, and labelled with the kernels' codes (``D1/F2``), so it reads in black and white.
    """
    pairs = c_s[["direct_kernel", "fft_kernel"]].drop_duplicates().sort_values(["direct_kernel", "fft_kernel"])
    if styles is None:
        names = pd.DataFrame({"kernel": [*pairs["direct_kernel"], *pairs["fft_kernel"]],
                              "method": ["direct"] * len(pairs) + ["fft"] * len(pairs)})
        styles = kernel_styles(names)
    directs = sorted(pairs["direct_kernel"].unique())
    ns = sorted(c_s["n"].unique())
    for d, f in zip(pairs["direct_kernel"], pairs["fft_kernel"]):
        p = c_s[(c_s["direct_kernel"] == d) & (c_s["fft_kernel"] == f)].sort_values("n")
        di = directs.index(d)
        kw = {"marker": styles[f]["marker"], "color": styles[d]["color"],
              "linestyle": ("-", "--", "-.", ":")[di % 4]}
        label = f"{styles[d]['code']}/{styles[f]['code']}"
        has = p[np.isfinite(p["k_star"].to_numpy(dtype=float))]
        if len(has):
            lo = (has["k_star"] - has["k_lo"]).to_numpy(dtype=float)
            hi = (has["k_hi"] - has["k_star"]).to_numpy(dtype=float)
            ax.errorbar(has["n"], has["k_star"], yerr=[lo, hi], markersize=4, linewidth=1, capsize=2,
                        label=label, **kw)
            label = None
        fa = p[p["verdict"] == "fft_always"]
        if len(fa):
            ax.plot(fa["n"], fa["k_hi"], marker="v", linestyle="none", markerfacecolor="none",
                    color=kw["color"], label=label)
            label = None
        da = p[p["verdict"] == "direct_always"]
        if len(da):
            ax.plot(da["n"], da["k_lo"], marker="^", linestyle="none", markerfacecolor="none",
                    color=kw["color"], label=label)
    if dim == 1 and ns:
        xs = np.array(ns, dtype=float)
        ax.plot(xs, np.log2(xs), color="black", linestyle=(0, (6, 3)), linewidth=1.5, label="rule: k = log2 n")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(_n_label(dim))
    ax.set_ylabel("k* (" + _k_label(dim)[3:])
    ax.set_title("k* vs n (bars: bracket; v fft always <= k, ^ direct always > k)", fontsize=8)
    ax.grid(True, which="major", linewidth=0.3, color="0.8")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              ncol=2 if len(pairs) > 8 else 1, title="direct/fft", title_fontsize=6)


def plot_winner_map(ax: Any, g_s: pd.DataFrame, styles: dict[str, dict[str, Any]]) -> None:
    """The fastest kernel at every measured (n, k): hatched, grey-shaded cells with a code."""
    from matplotlib.patches import Patch, Rectangle

    ns = sorted(g_s["n"].unique())
    ks = sorted(g_s["k"].unique())
    best = g_s.loc[g_s.groupby(["n", "k"])["time_s"].idxmin()]
    seen = []
    for r in best.to_dict("records"):
        st = styles[r["kernel"]]
        x, y = ks.index(r["k"]), ns.index(r["n"])
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=st["grey"], hatch=st["hatch"],
                               edgecolor="black", linewidth=0.5))
        ax.text(x, y, st["code"], ha="center", va="center", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
        if r["kernel"] not in seen:
            seen.append(r["kernel"])
    ax.set_xlim(-0.5, len(ks) - 0.5)
    ax.set_ylim(-0.5, len(ns) - 0.5)
    ax.set_xticks(range(len(ks)), [str(int(k)) for k in ks], fontsize=7, rotation=90 if len(ks) > 8 else 0)
    ax.set_yticks(range(len(ns)), [str(int(n)) for n in ns], fontsize=7)
    dim = int(g_s["dim"].iloc[0])
    ax.set_xlabel(_k_label(dim))
    ax.set_ylabel(_n_label(dim))
    ax.set_title("fastest kernel at each (n, k)", fontsize=9)
    handles = [Patch(facecolor=styles[k]["grey"], hatch=styles[k]["hatch"], edgecolor="black",
                     label=f"{styles[k]['code']} {k}") for k in sorted(seen, key=lambda k: styles[k]["code"])]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def make_figure(df: pd.DataFrame, crossovers: pd.DataFrame, kind: str = "all") -> Any:
    """One figure with a block per series: time vs k panels, then k* vs n and the winner map.

    Parameters
    ----------
    df : pandas.DataFrame
        Measurements with ``machine_id``/``machine`` (see :func:`symbench.analysis.data.load_runs`).
    crossovers : pandas.DataFrame
        From :func:`symbench.analysis.crossover.find_crossovers`.
    kind : {"all", "time", "kstar", "winners"}
        Which plots.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require_matplotlib()
    from matplotlib.figure import Figure

    if kind not in KINDS:
        raise SymbenchError(f"unknown plot kind {kind!r}; allowed: {', '.join(KINDS)}")
    series = _series_frames(df, crossovers)
    if not series:
        raise SymbenchError("nothing to plot: the run has no ok rows")
    styles = kernel_styles(ok_rows(df))
    blocks = []  # (label, frames, rows of panels)
    for label, g_s, c_s in series:
        ns = sorted(g_s["n"].unique())
        time_rows = math.ceil(len(ns) / _NCOLS) if kind in ("all", "time") else 0
        extra = 1 if kind in ("all", "kstar", "winners") else 0
        if kind == "kstar" and len(c_s) == 0:
            continue
        blocks.append((label, g_s, c_s, ns, time_rows, extra))
    if not blocks:
        raise SymbenchError("nothing to plot: no crossovers (the run has nothing to pair)")
    total_rows = sum(b[4] + b[5] for b in blocks)
    fig = Figure(figsize=(_NCOLS * _PANEL_W, total_rows * _PANEL_H + 0.4 * len(blocks)), layout="constrained")
    # One subfigure per row of panels: each lays out on its own, so a wide legend in
    # one row does not squeeze the panels of the others.
    heights = [1] * total_rows
    subfigs = fig.subfigures(total_rows, 1, height_ratios=heights, squeeze=False)[:, 0]
    row = 0
    for label, g_s, c_s, ns, time_rows, extra in blocks:
        first_ax = None
        shown = ns[: time_rows * _NCOLS] if time_rows else []
        # One legend per series, beside the last panel of its first row.
        legend_at = min(len(shown), _NCOLS) - 1
        axes_rows = [subfigs[row + r].subplots(1, _NCOLS, squeeze=False)[0] for r in range(time_rows)]
        for i, n in enumerate(shown):
            ax = axes_rows[i // _NCOLS][i % _NCOLS]
            first_ax = first_ax or ax
            plot_time_vs_k(ax, g_s[g_s["n"] == n], c_s[c_s["n"] == n] if len(c_s) else c_s, styles,
                           legend=i == legend_at)
        for i in range(len(shown), time_rows * _NCOLS):
            axes_rows[i // _NCOLS][i % _NCOLS].set_axis_off()
        row += time_rows
        if extra:
            dim = int(g_s["dim"].iloc[0])
            sub = subfigs[row]
            both = kind == "all"
            panels = sub.subplots(1, 2 if both else 1, squeeze=False,
                                  gridspec_kw={"width_ratios": [1, 1]} if both else None)[0]
            if kind in ("all", "kstar"):
                ax = panels[0]
                first_ax = first_ax or ax
                if len(c_s):
                    plot_kstar_vs_n(ax, c_s, dim, styles)
                else:
                    ax.text(0.5, 0.5, "no crossovers: nothing to pair", ha="center", va="center",
                            transform=ax.transAxes)
                    ax.set_axis_off()
            if kind in ("all", "winners"):
                ax = panels[-1]
                first_ax = first_ax or ax
                plot_winner_map(ax, g_s, styles)
            row += 1
        if first_ax is not None:
            first_ax.annotate(label, xy=(0, 1), xycoords="axes fraction", xytext=(0, 22),
                              textcoords="offset points", fontsize=11, fontweight="bold", va="bottom")
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG, SVG or PDF, chosen by the file's suffix."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise SymbenchError(f"--out {str(path)!r}: unknown figure format {path.suffix or '(none)'!r}; "
                            f"allowed: {', '.join(FORMATS)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150 if path.suffix.lower() == ".png" else None)
    except OSError as exc:
        raise SymbenchError(f"cannot write figure {str(path)!r}: {exc.strerror or exc}") from None
    return path


def write_plots(df: pd.DataFrame, crossovers: pd.DataFrame, out: str | Path, kind: str = "all") -> Path:
    """Make the figure of ``kind`` and save it to ``out`` (.png, .svg or .pdf)."""
    if Path(out).suffix.lower() not in FORMATS:
        raise SymbenchError(f"--out {str(out)!r}: unknown figure format {Path(out).suffix or '(none)'!r}; "
                            f"allowed: {', '.join(FORMATS)}")
    return save_figure(make_figure(df, crossovers, kind), out)


__all__: Sequence[str] = ("KINDS", "make_figure", "plot_kstar_vs_n", "plot_time_vs_k", "plot_winner_map",
                          "save_figure", "write_plots", "kernel_styles")
