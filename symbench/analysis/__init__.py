"""Analysis: pure functions from run tables (pandas DataFrames) to answers.

Nothing here measures, and nothing here imports ``kernels``, ``timing`` or
``runner``, so a report can be made on a machine without pyFFTW or a GPU.
Rendering lives in :mod:`symbench.render`.

Modules
-------
data
    :func:`~symbench.analysis.data.load_runs`: several runs in one table, tagged with their machine.
crossover
    :func:`~symbench.analysis.crossover.find_crossovers`: k* per (direct, fft) pair, verdicts, bootstrap.
models
    :func:`~symbench.analysis.models.fit_models` and :func:`~symbench.analysis.models.model_k_star`.
regret
    :func:`~symbench.analysis.regret.auto_regret`: how far each ``auto`` kernel is from the fastest.
compare
    :func:`~symbench.analysis.compare.compare_runs`: regressions, improvements, moved crossovers.
report
    :func:`~symbench.analysis.report.build_report`: everything ``symbench report`` shows.
"""
