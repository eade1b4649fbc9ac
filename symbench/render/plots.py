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
from symbench.render.text import fmt_num

KINDS = ("all", "time", "kstar", "winners")
FORMATS = (".png", ".svg", ".pdf", ".ps", ".eps")
#: Font settings of every saved figure: TrueType (Type 42) in PDF and PostScript, which
#: paper checkers accept (Type 3 bitmaps are refused), and SVG text kept as text.
FONT_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}
#: A one-panel figure for one column of a two-column paper (inches).
COLUMN_FIGSIZE = (3.4, 2.6)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
_LINESTYLES = {"direct": "-", "fft": "--", "auto": ":"}
_HATCHES = ("", "///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||", "**")
_GREYS = ("0.95", "0.75", "0.55", "0.85", "0.65", "0.45", "0.9", "0.7", "0.6", "0.8")
# Colour helps on screen; markers, line styles and hatching carry the meaning in print.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#000000")
#: Known kernels: (index into the colour/marker/hatch tables, code). Fixed, so that a kernel
#: looks the same in every figure of a paper, whichever other kernels a run has.
_KNOWN_STYLES = {
    "direct": (0, "D"), "direct-numpy": (1, "DN"), "direct-scipy": (2, "DS"), "direct-cupy": (5, "DC"),
    "fft-numpy": (3, "FN"), "fft-scipy": (4, "FS"), "oa-scipy": (6, "OA"), "fft-pyfftw": (9, "FW"),
    "fft-cupy": (8, "FC"), "auto-scipy": (7, "AS"), "auto-opencv": (10, "AO"),
    "gconv-direct": (0, "GD"), "gconv-fft": (3, "GF"), "gconv-fft-unshared": (4, "GU"),
    "gconv-direct-cupy": (5, "GDC"), "gconv-fft-cupy": (8, "GFC"),
}
_PANEL_W, _PANEL_H, _NCOLS = 3.6, 2.9, 4


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SymbenchError("plots need matplotlib, which is not installed; "
                            "install the plot extra: pip install 'symbench[plot]'") from None


def kernel_style(name: str, method: str = "") -> dict[str, Any]:
    """Colour, marker, line style, hatch, grey and code of one kernel, the same in every figure.

    Known kernels have fixed entries; any other name is placed by a hash of the
    name (CRC-32, stable across runs and machines) and coded by its initials.
    """
    import zlib

    if name in _KNOWN_STYLES:
        i, code = _KNOWN_STYLES[name]
    else:
        i = zlib.crc32(name.encode())
        code = "".join(part[:1] for part in name.replace("_", "-").split("-") if part).upper()[:3] or "?"
    if not method:
        method = next((m for m in _LINESTYLES if name.startswith(m) or f"-{m}" in name), "")
    return {"marker": _MARKERS[i % len(_MARKERS)], "linestyle": _LINESTYLES.get(method, "-."), "code": code,
            "hatch": _HATCHES[i % len(_HATCHES)], "grey": _GREYS[i % len(_GREYS)],
            "color": _COLORS[i % len(_COLORS)]}


def kernel_styles(kernels: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """:func:`kernel_style` of every kernel of a frame with ``kernel`` and ``method`` columns."""
    pairs = kernels[["kernel", "method"]].drop_duplicates()
    return {name: kernel_style(str(name), str(method)) for name, method in zip(pairs["kernel"], pairs["method"])}


def _legend(ax: Any, where: str, handles: Any = None, **kw: Any) -> None:
    """A legend beside the axes (``right``, the overview) or under them (``below``, one panel)."""
    if where == "none":
        return
    if where == "below":
        kw.setdefault("ncol", 2)
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.22)}
    else:
        place = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
    extra = {"handles": handles} if handles is not None else {}
    ax.legend(fontsize=6, frameon=False, **place, **extra, **kw)


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
                   legend: bool | str = True) -> None:
    """Time per call vs k (log-log) at one n; one line per kernel; k* as vertical lines.

    ``legend``: True or ``"right"`` beside the axes, ``"below"`` under them, False for none.
    """
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
    ax.set_title(f"n = {int(g_n['n'].iloc[0])}", fontsize=8 if legend == "below" else 10)
    for i, r in enumerate(_marked_pairs(c_n, g_n).to_dict("records")):
        ax.axvline(r["k_star"], color="black", linestyle=(0, (1, 2 + i)), linewidth=1)
        code = f"{styles[r['direct_kernel']]['code']}/{styles[r['fft_kernel']]['code']}"
        ax.annotate(f"k*={fmt_num(r['k_star'])} {code}",
                    xy=(r["k_star"], 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3 - 9 * i),
                    textcoords="offset points", va="top", fontsize=6)
    ax.grid(True, which="major", linewidth=0.3, color="0.8")
    if legend:
        _legend(ax, "right" if legend is True else str(legend))


def plot_kstar_vs_n(ax: Any, c_s: pd.DataFrame, dim: int, styles: dict[str, dict[str, Any]] | None = None,
                    legend: str = "right") -> None:
    """k* vs n per pair, bracket as error bar; open triangles for fft_always / direct_always.

    A pair is drawn with its fft kernel's marker and a line style (and colour) per direct
    kernel, and labelled with both kernels' names, so it reads in black and white. An
    inconclusive k* is drawn hollow. ``legend``: ``right``, ``below`` or ``none``.
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
        label = f"{d} / {f}"
        has = p[np.isfinite(p["k_star"].to_numpy(dtype=float))]
        if len(has):
            lo = (has["k_star"] - has["k_lo"]).to_numpy(dtype=float)
            hi = (has["k_hi"] - has["k_star"]).to_numpy(dtype=float)
            ax.errorbar(has["n"], has["k_star"], yerr=[lo, hi], markersize=4, linewidth=1, capsize=2,
                        label=label, **kw)
            label = None
            unsure = has[has["verdict"] == "inconclusive"]
            if len(unsure):
                # Hollow: the bootstrap could not confirm this k*; the bar still shows the bracket.
                ax.plot(unsure["n"], unsure["k_star"], marker=kw["marker"], linestyle="none", markersize=4,
                        markerfacecolor="white", markeredgecolor=kw["color"], zorder=3)
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
    if legend == "below":
        ax.set_title("k* vs n (bars: bracket; hollow: inconclusive)", fontsize=7)
    else:
        ax.set_title("k* vs n (bars: bracket; hollow: inconclusive; v fft always <= k, ^ direct always > k)",
                     fontsize=7)
    ax.grid(True, which="major", linewidth=0.3, color="0.8")
    _legend(ax, legend, ncol=1 if legend == "below" or len(pairs) <= 8 else 2, title="direct / fft",
            title_fontsize=6)


def plot_winner_map(ax: Any, g_s: pd.DataFrame, styles: dict[str, dict[str, Any]], legend: str = "right") -> None:
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
    _legend(ax, legend, handles=handles)


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


def select(df: pd.DataFrame, crossovers: pd.DataFrame, series: str | None = None,
           n: Sequence[int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The measurements and crossovers of one series (by label, or a unique part of one) and of some n.

    Raises
    ------
    SymbenchError
        When ``series`` matches no series or several, or an ``n`` was not measured.
    """
    if series is not None:
        frames = _series_frames(df, crossovers)
        labels = [label for label, _, _ in frames]
        hits = [i for i, label in enumerate(labels) if label == series]
        hits = hits or [i for i, label in enumerate(labels) if series.lower() in label.lower()]
        if len(hits) != 1:
            what = "matches no series" if not hits else "matches several series"
            raise SymbenchError(f"--series {series!r} {what}; the run has: " + "; ".join(labels))
        _, g_s, c_s = frames[hits[0]]
        keep = ok_rows(df).index.isin(g_s.index)
        df, crossovers = ok_rows(df)[keep], c_s
    if n:
        measured = sorted(int(v) for v in ok_rows(df)["n"].unique())
        missing = [v for v in n if v not in measured]
        if missing:
            raise SymbenchError(f"--n {missing[0]} was not measured; measured n: "
                                + ", ".join(str(v) for v in measured))
        df = df[df["n"].isin(list(n))]
        crossovers = crossovers[crossovers["n"].isin(list(n))] if len(crossovers) else crossovers
    return df, crossovers


def make_panel(df: pd.DataFrame, crossovers: pd.DataFrame, kind: str,
               figsize: tuple[float, float] = COLUMN_FIGSIZE) -> Any:
    """One clean panel of one series for a paper's column: ``time`` (one n), ``kstar`` or ``winners``.

    Fonts are 6-8 pt and the legend, naming the kernels, sits under the axes so
    nothing overlaps at 3.3-3.5 inches. Select the series and n first with :func:`select`.

    Raises
    ------
    SymbenchError
        For ``all``, or when the data hold several series (or, for ``time``, several n).
    """
    _require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    if kind not in KINDS[1:]:
        raise SymbenchError(f"one panel (--figsize) needs --kind time, kstar or winners, not {kind!r}")
    frames = _series_frames(df, crossovers)
    if not frames:
        raise SymbenchError("nothing to plot: the run has no ok rows")
    if len(frames) > 1:
        raise SymbenchError("one panel shows one series; choose it with --series: "
                            + "; ".join(label for label, _, _ in frames))
    _, g_s, c_s = frames[0]
    styles = kernel_styles(g_s)
    dim = int(g_s["dim"].iloc[0])
    small = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
             "ytick.labelsize": 6, "legend.fontsize": 6}
    with matplotlib.rc_context(small):
        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.subplots()
        if kind == "time":
            ns = sorted(g_s["n"].unique())
            if len(ns) > 1:
                raise SymbenchError("--kind time draws one n in a panel; choose it with --n (measured: "
                                    + ", ".join(str(int(v)) for v in ns) + ")")
            plot_time_vs_k(ax, g_s, c_s, styles, legend="below")
        elif kind == "kstar":
            if len(c_s) == 0:
                raise SymbenchError("nothing to plot: no crossovers (the run has nothing to pair)")
            plot_kstar_vs_n(ax, c_s, dim, styles, legend="below")
        else:
            plot_winner_map(ax, g_s, styles, legend="below")
    return fig


def save_figure(fig: Any, path: str | Path, dpi: float | None = None) -> Path:
    """Write ``fig`` as PNG, SVG, PDF, PS or EPS, chosen by the file's suffix.

    Fonts follow :data:`FONT_RC`: Type 42 in PDF/PS (never Type 3), text as text in SVG.
    ``dpi`` sets the PNG's resolution (default 150; 300 for print).
    """
    import matplotlib

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise SymbenchError(f"--out {str(path)!r}: unknown figure format {path.suffix or '(none)'!r}; "
                            f"allowed: {', '.join(FORMATS)}")
    if dpi is not None and not dpi > 0:
        raise SymbenchError(f"--dpi {dpi:g} must be positive (e.g. 300)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context(FONT_RC):
            fig.savefig(path, dpi=dpi or 150)
    except OSError as exc:
        raise SymbenchError(f"cannot write figure {str(path)!r}: {exc.strerror or exc}") from None
    return path


def write_plots(df: pd.DataFrame, crossovers: pd.DataFrame, out: str | Path, kind: str = "all",
                series: str | None = None, n: Sequence[int] | None = None,
                figsize: tuple[float, float] | None = None, dpi: float | None = None) -> Path:
    """Make the figure of ``kind`` and save it to ``out`` (.png, .svg, .pdf, .ps or .eps).

    With ``figsize`` one panel (:func:`make_panel`); else the overview of
    :func:`make_figure`. ``series`` and ``n`` narrow either (:func:`select`).
    """
    if Path(out).suffix.lower() not in FORMATS:
        raise SymbenchError(f"--out {str(out)!r}: unknown figure format {Path(out).suffix or '(none)'!r}; "
                            f"allowed: {', '.join(FORMATS)}")
    if figsize is not None and (len(figsize) != 2 or not all(0 < v <= 50 for v in figsize)):
        raise SymbenchError(f"--figsize {figsize}: give WIDTH,HEIGHT in inches, e.g. 3.4,2.6")
    df, crossovers = select(df, crossovers, series, n)
    fig = make_panel(df, crossovers, kind, figsize) if figsize is not None else make_figure(df, crossovers, kind)
    return save_figure(fig, out, dpi)


__all__: Sequence[str] = ("COLUMN_FIGSIZE", "FONT_RC", "FORMATS", "KINDS", "kernel_style", "kernel_styles",
                          "make_figure", "make_panel", "plot_kstar_vs_n", "plot_time_vs_k", "plot_winner_map",
                          "save_figure", "select", "write_plots")
