r"""Small statistical helpers shared by the report, compare, tune and the adaptive search.

One implementation each of what was written several times: the one-sided
Mann-Whitney U test on raw samples, the interpolation of k\* between two
measured k, the statistics of a row computed from its samples
(:func:`grouped_summary`), and the hierarchical bootstrap of a median over
rounds (:func:`hierarchical_boot_medians`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is only needed by grouped_summary, imported there
    import pandas as pd


def mann_whitney_p(new: Sequence[float], base: Sequence[float], alternative: str) -> float:
    """One-sided Mann-Whitney U p-value (``alternative="greater"``: ``new``'s samples are larger).

    Identical samples (a run compared with itself) have nothing to test: 1.0.
    """
    from scipy.stats import mannwhitneyu

    new, base = np.asarray(new, dtype=float), np.asarray(base, dtype=float)
    if np.array_equal(np.sort(new), np.sort(base)):
        return 1.0
    return float(mannwhitneyu(new, base, alternative=alternative).pvalue)


def log_interpolate_k(k_lo: float, k_hi: float, r_lo: float, r_hi: float) -> float:
    """The k between two measured ``k_lo < k_hi`` where the log time ratio crosses zero.

    ``r_lo`` and ``r_hi`` are ``log(t_direct / t_fft)`` at the two k; linear in
    ``log k`` between them. When they do not straddle zero (``r_lo <= 0 < r_hi``)
    the geometric midpoint is returned.

    Examples
    --------
    >>> round(log_interpolate_k(8, 32, -1.0, 1.0), 6)
    16.0
    """
    frac = -r_lo / (r_hi - r_lo) if r_lo <= 0 < r_hi else 0.5
    return math.exp(math.log(k_lo) + frac * (math.log(k_hi) - math.log(k_lo)))


def grouped_summary(values: pd.Series, by: pd.Series) -> pd.DataFrame:
    """The statistics of ``measurements.csv`` for many groups of samples at once.

    The definitions are those of ``symbench.sweep.timing.Measurement`` (which
    analysis may not import): median, minimum, quartiles by linear interpolation
    (``numpy.percentile``'s default), mean, and the sample standard deviation
    (``ddof=1``, 0 for a single sample). Grouped pandas aggregations instead of
    one ``Measurement`` per group: a default run pools thousands of samples.

    Parameters
    ----------
    values : pandas.Series
        Seconds per call, one value per sample; non-finite values are left out.
    by : pandas.Series
        The group of each sample (same index as ``values``).

    Returns
    -------
    pandas.DataFrame
        Indexed by group; columns ``time_s``, ``time_min_s``, ``time_q1_s``,
        ``time_q3_s``, ``time_mean_s``, ``time_std_s`` and ``samples``.
    """
    import pandas as pd

    v = pd.to_numeric(values, errors="coerce").astype(float)
    keep = np.isfinite(v.to_numpy())
    g = v[keep].groupby(by[keep], sort=False)
    out = pd.DataFrame({
        "time_s": g.median(), "time_min_s": g.min(), "time_q1_s": g.quantile(0.25),
        "time_q3_s": g.quantile(0.75), "time_mean_s": g.mean(), "time_std_s": g.std(ddof=1),
        "samples": g.size(),
    })
    out.loc[out["samples"] < 2, "time_std_s"] = 0.0
    return out


def hierarchical_boot_medians(groups: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator,
                              drawn: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates of the median of samples taken in several rounds.

    Each replicate first draws as many rounds as there are, with replacement,
    then draws within each drawn round as many samples as it has, with
    replacement, and takes the median of the pooled draw. Resampling the rounds
    first carries the spread *between* rounds (each a fresh process: another
    memory layout, another moment of a shared machine's load) into the
    replicates; the samples of one round are not independent draws of that
    spread, so resampling them alone (the flat bootstrap) understates it.

    Parameters
    ----------
    groups : sequence of ndarray
        The samples of each round (each non-empty).
    n_boot : int
        Number of replicates.
    rng : numpy.random.Generator
        Source of the draws; the result is a function of its state.
    drawn : ndarray of int, shape (n_boot, len(groups)), optional
        The rounds each replicate draws, when the caller draws them: two
        kernels measured in the same rounds (the same processes and minutes)
        are given the same draws, so that a round that was slow for both
        moves both replicates alike instead of their ratio.

    Returns
    -------
    ndarray, shape (n_boot,)
        The replicates' medians. With a single round the draws are exactly those
        of the flat bootstrap (``rng.integers(0, n, (n_boot, n))``), so one-round
        data gives the same numbers whichever is called.

    References
    ----------
    .. [1] V. Saravanan, G. J. Berman and S. J. Sober, "Application of the
       hierarchical bootstrap to multi-level data in neuroscience",
       Neurons, Behavior, Data analysis, and Theory 3(5), 2020.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reps = hierarchical_boot_medians([np.array([1.0, 1.1]), np.array([2.0, 2.1])], 500, rng)
    >>> reps.shape, bool(reps.min() >= 1.0), bool(reps.max() <= 2.1)
    ((500,), True, True)
    """
    arrays = [np.asarray(g, dtype=float).ravel() for g in groups]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("hierarchical_boot_medians needs at least one round, each with samples")
    if len(arrays) == 1:
        a = arrays[0]
        return np.median(a[rng.integers(0, a.size, size=(n_boot, a.size))], axis=1)
    sizes = np.array([a.size for a in arrays])
    r, width = len(arrays), int(sizes.max())
    padded = np.full((r, width), np.nan)
    for i, a in enumerate(arrays):
        padded[i, :a.size] = a
    if drawn is None:
        drawn = rng.integers(0, r, size=(n_boot, r))                 # rounds of each replicate
    elif drawn.shape != (n_boot, r):
        raise ValueError(f"drawn has shape {drawn.shape}, expected {(n_boot, r)}")
    n_drawn = sizes[drawn]                                            # (B, R) samples of each drawn round
    pos = np.minimum((rng.random((n_boot, r, width)) * n_drawn[..., None]).astype(np.intp),
                     n_drawn[..., None] - 1)
    vals = padded[drawn[..., None], pos]
    # Slots beyond a drawn round's own size are padding: NaN, which sorts last,
    # so each replicate's median is read off its first `total` sorted values.
    vals[np.arange(width)[None, None, :] >= n_drawn[..., None]] = np.nan
    vals = np.sort(vals.reshape(n_boot, r * width), axis=1)
    total = n_drawn.sum(axis=1)
    lo = np.take_along_axis(vals, ((total - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(vals, (total // 2)[:, None], axis=1)[:, 0]
    return (lo + hi) / 2
