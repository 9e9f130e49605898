"""Results that live in the repository: the campaigns that make them and the files they commit.

- :mod:`imbloss.results.config`: a campaign file (``campaigns/<name>.yaml``) read and checked.
- :mod:`imbloss.results.plan`: from the file to the ``train.py -m`` commands of its stages, the
  earlier runs it reuses, what each stage lacks; ``python -m imbloss.results run`` runs it.
- :mod:`imbloss.results.verdicts`: the statistics a claim is decided by (paired t, TOST, Holm,
  variance components).
- :mod:`imbloss.results.page`: the campaign's claims page and the README's headline.
- :mod:`imbloss.results.compact`: a finished run's ``predictions.npz`` rewritten small enough to
  commit (float16 probabilities, compressed, the protocol's test split as positions).
- :mod:`imbloss.results.processes`: one runner at a time, each multirun in its own process group.
"""
