"""The measuring engine: a sweep's grid becomes rows of a run directory.

Imports run one way, from the top down: :mod:`~symbench.sweep.runner` (the
sweep: grid, resume, progress, Ctrl-C) -> :mod:`~symbench.sweep.adaptive` (the
adaptive search) -> :mod:`~symbench.sweep.measure` (one kernel on one problem
becomes a row) -> :mod:`~symbench.sweep.interleave` (the kernels of a problem
sampled in turns) -> :mod:`~symbench.sweep.timing` (clocks and autorange).
:mod:`~symbench.sweep.allocator` and :mod:`~symbench.sweep.interrupt` serve
them all. Nothing outside the CLI imports this package.
"""
