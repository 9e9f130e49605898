"""What runs across the jobs of a multirun: its grids, checks, devices, progress and halving.

- :mod:`~imbloss.multirun.sweeps`: tuning grids as Hydra sweeps (OmegaConf resolvers);
- :mod:`~imbloss.multirun.devices`: which devices and CPU threads each parallel job uses;
- :mod:`~imbloss.multirun.preflight`: every job checked before the first one trains;
- :mod:`~imbloss.multirun.progress`: one line each time a job ends, with what is left;
- :mod:`~imbloss.multirun.callbacks`: the Hydra callbacks (``conf/hydra/default.yaml``);
- :mod:`~imbloss.multirun.halving`: successive halving's rungs, choices and record.
"""
