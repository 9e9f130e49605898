"""Schedule arithmetic shared by the configuration (a resolver) and the data (a sampler's switch).

:func:`epoch_at` places epoch-dependent behaviour at a share of the training schedule: ``wldam``'s
deferred re-weighting (``${epoch_at:0.8,${trainer.max_epochs}}``, registered by
:mod:`imbloss.multirun.sweeps`) and the deferred resampler's switch (:mod:`imbloss.data.samplers`).
"""

from __future__ import annotations

from imbloss.errors import ConfigError


def epoch_at(fraction: float, max_epochs: int) -> int:
    """The 0-based epoch ``floor(fraction * max_epochs)``: epoch 160 of 200 at 0.8, and the same
    share of any shorter schedule."""
    if not 0 <= fraction <= 1 or max_epochs < 1:
        raise ConfigError(
            f"epoch_at({fraction}, {max_epochs}): accepted: 0 <= fraction <= 1 and max_epochs >= 1"
        )
    return int(fraction * max_epochs)
