"""Convolution kernels, one module per family, collected by :mod:`symbench.kernels.registry`."""

from symbench.kernels.base import Kernel, KernelOptions, Prepared
from symbench.kernels.registry import all_kernels, get, register, resolve, unregister

__all__ = ["Kernel", "KernelOptions", "Prepared", "all_kernels", "get", "register", "resolve", "unregister"]
