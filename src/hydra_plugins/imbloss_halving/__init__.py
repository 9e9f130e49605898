"""imbloss's Hydra sweeper ``hydra/sweeper=halving`` (see :mod:`.halving_sweeper`)."""
