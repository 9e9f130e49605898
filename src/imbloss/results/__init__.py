"""Results that live in the repository: the campaign that makes them and the files it commits.

- :mod:`imbloss.results.plan`: the Fashion-MNIST campaign (stages, their grids, the decisions they
  rest on) and the job folders it fills; ``python -m imbloss.results run`` runs or continues it.
- :mod:`imbloss.results.compact`: a finished run's ``predictions.npz`` rewritten small enough to
  commit (float16 probabilities, compressed, the protocol's test split as positions).
- :mod:`imbloss.results.claims`: ``docs/results.md``, every claim of the sources with a verdict.
"""
