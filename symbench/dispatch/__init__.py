"""Run-time dispatch: choosing a kernel for a user's call.

:mod:`~symbench.dispatch.api` holds the public ``convolve`` and ``gconv``;
:mod:`~symbench.dispatch.selector` picks a kernel from a tuned table, else from
the cost models of :mod:`~symbench.dispatch.costs`; :mod:`~symbench.dispatch.table`
reads and checks the table that ``symbench tune`` writes.
"""
