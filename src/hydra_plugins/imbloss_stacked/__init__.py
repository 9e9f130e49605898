"""imbloss's Hydra launcher ``hydra/launcher=stacked`` (see :mod:`.stacked_launcher`)."""
