"""Datasets, imbalance protocols, training samplers and the DataModule that serves them."""

from imbloss.data.datamodule import ImbalancedDataModule
from imbloss.data.protocols import available_protocols
from imbloss.data.samplers import available_samplers
from imbloss.data.sources import available_sources

__all__ = ["ImbalancedDataModule", "available_protocols", "available_samplers", "available_sources"]
