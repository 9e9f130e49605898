"""A run's folder and its files: their names, writing and reading them, claiming, resuming, loading.

- :mod:`~imbloss.runs.layout`: the run-folder contract, the name of every file a run leaves;
- :mod:`~imbloss.runs.outputs`: writing a run's files atomically (temporary file, then rename);
- :mod:`~imbloss.runs.readers`: reading them back, a truncated or corrupt file named;
- :mod:`~imbloss.runs.folder`: whether a job may use its folder (its state, its claim);
- :mod:`~imbloss.runs.lock`: one process at a time in a folder (an exclusive lock);
- :mod:`~imbloss.runs.resume`: atomic checkpoints, a resumed run's state, and how a job starts;
- :mod:`~imbloss.runs.load`: a finished run's model back in one call (``imbloss.load_run``).
"""
