"""The figure of docs/peers.md: gconv-torch / gconv-fft time ratio by k, one line per n.

    python bench/peers_figure.py RUN_DIR docs/img/peers-gconv.png

Reads ``RUN_DIR/measurements.csv`` of a sweep of ``configs/peers.toml`` and
draws, for each of p4/p4m lift and gconv, the median time of ``gconv-torch``
over that of ``gconv-fft`` against k: below 1 PyTorch's direct layer is
faster, and where a line crosses 1 is the crossover at that n.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def ratios(run_dir: Path) -> pd.DataFrame:
    """``(op, group, n, k, ratio)`` of gconv-torch over gconv-fft from one run's ok rows."""
    df = pd.read_csv(run_dir / "measurements.csv")
    df = df[(df["status"] == "ok") & df["op"].isin(["lift", "gconv"])]
    t = df.pivot_table(index=["op", "group", "n", "k"], columns="kernel", values="time_s", aggfunc="median")
    out = (t["gconv-torch"] / t["gconv-fft"]).rename("ratio").dropna().reset_index()
    return out


def draw(table: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(op, group) for op in ("lift", "gconv") for group in ("p4", "p4m")]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6), sharey=True, dpi=90)
    for ax, (op, group) in zip(axes, panels):
        sub = table[(table["op"] == op) & (table["group"] == group)]
        for n, line in sub.groupby("n"):
            ax.plot(line["k"], line["ratio"], marker="o", ms=3, label=f"n={n}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{op} {group}", fontsize=9)
        ax.set_xlabel("k", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("gconv-torch / gconv-fft", fontsize=8)
    axes[-1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    table = ratios(Path(argv[0]))
    if table.empty:
        print("no gconv-torch and gconv-fft rows to compare", file=sys.stderr)
        return 1
    draw(table, Path(argv[1]))
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
