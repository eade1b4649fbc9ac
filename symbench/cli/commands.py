"""Imports every command module so that its commands register on the app."""

from symbench.cli import cmd_sweep  # noqa: F401  kernels, info, sweep, verify
from symbench.cli import cmd_params  # noqa: F401  params
from symbench.cli import cmd_report  # noqa: F401  report, compare, plot
from symbench.cli import cmd_tune  # noqa: F401  tune
from symbench.cli import cmd_ab  # noqa: F401  ab, worker (hidden)
