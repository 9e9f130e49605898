"""Analyses of the losses themselves, outside training (``python -m imbloss.analysis``)."""
