"""The measurement settings a sweep uses when neither a config file nor the command line gives them.

Defined once: :class:`symbench.config.SweepConfig`, the config reader, the
kernels' options and the CLI's ``--help`` all read them from here. This module
imports nothing, so ``symbench --help`` stays fast.
"""

from __future__ import annotations

from types import MappingProxyType

#: FFTW planner efforts, cheapest first (``--planner``).
PLANNERS = ("estimate", "measure", "patient", "exhaustive")

#: Measurement settings (the top-level keys of a config file).
DEFAULTS = MappingProxyType({
    "repeat": 7,          # samples per measurement (per round)
    "rounds": 1,          # repetitions of the whole sweep, each in a fresh worker process (1: in this process)
    "min_time": 0.005,    # shortest sample, seconds (calls per sample are autoranged to reach it)
    "max_call": 1.0,      # one call longer than this: larger k of the series are not run
    "adaptive": False,    # search for k* instead of measuring every k
    "seed": 0,            # seed of the random inputs
    "planner": "measure", # FFTW planner effort, one of PLANNERS
    "flush_l2": False,    # GPU kernels: evict the L2 cache before each call
})
