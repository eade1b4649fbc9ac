"""Facts about the machine: :mod:`~symbench.machine.environment` (CPU, memory,
library versions, thread settings; what ``run.json`` and ``symbench info``
record) and :mod:`~symbench.machine.gpu` (the CUDA probe, device facts, CUDA
event clocks; CuPy is imported only when asked)."""
