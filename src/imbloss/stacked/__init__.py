"""Stacked training: the compatible jobs of a multirun trained together as one stacked model.

- :mod:`~imbloss.stacked.grouping`: which jobs may share a stack (their configurations differ
  only in ``loss``, ``seed`` and per-job bookkeeping);
- :mod:`~imbloss.stacked.network`: K copies of one network as stacked parameters (torch.func);
- :mod:`~imbloss.stacked.engine`: the training loop of one stack, per-member batches, losses,
  validation, checkpoint selection and NaN guard;
- :mod:`~imbloss.stacked.memory`: one member's footprint and the split of a group into passes;
- :mod:`~imbloss.stacked.group`: a group from composed job configurations to every member's files.

The Hydra launcher ``hydra/launcher=stacked`` (``hydra_plugins.imbloss_stacked``) drives them.
"""
