"""The version of the protocol between a sweep or ``ab`` and its worker processes.

Its own module so that the parent's side (:mod:`symbench.sweep.client`) can
check a worker's hello without importing the worker, which itself imports
the sweep runner (for a run's metadata): the two would form an import cycle.
"""

from __future__ import annotations

#: Bumped on any incompatible change of messages; parent and worker must agree exactly.
PROTOCOL = 1

__all__ = ["PROTOCOL"]
