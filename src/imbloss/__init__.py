"""imbloss: losses for class-imbalanced image classification, compared honestly."""

__version__ = "0.1.0"
