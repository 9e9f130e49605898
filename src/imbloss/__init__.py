"""imbloss: losses for class-imbalanced image classification, compared honestly."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``imbloss.load_run`` (:mod:`imbloss.runs.load`), imported on first use: ``import imbloss``
    stays free of torch, which ``train.py`` must import only after the allocator set-up."""
    if name == "load_run":
        from imbloss.runs.load import load_run

        return load_run
    raise AttributeError(f"module 'imbloss' has no attribute {name!r}")
