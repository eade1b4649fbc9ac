"""Building blocks that kernel modules share: compiled loops, plans, group
transforms and array-module (NumPy/CuPy) code. Nothing here defines
``KERNELS``; the registry discovers only the modules directly under
:mod:`symbench.kernels`."""
