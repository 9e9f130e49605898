"""Datasets, imbalance protocols and the Lightning DataModule that serves them."""

from imbloss.data.datamodule import ImbalancedDataModule
from imbloss.data.protocols import available_protocols
from imbloss.data.sources import available_sources

__all__ = ["ImbalancedDataModule", "available_protocols", "available_sources"]
