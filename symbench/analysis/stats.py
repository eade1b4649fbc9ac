r"""Small statistical helpers shared by the report, compare, tune and the adaptive search.

One implementation each of what was written several times: the one-sided
Mann-Whitney U test on raw samples, and the interpolation of k\* between two
measured k.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


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
