"""Errors the command line reports as one message, without a traceback (exit code 2)."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input: the message says what is wrong and what is accepted."""


class ConfigError(UserError):
    """A bad value in the configuration: the message names it and the accepted values."""


class RunFileError(UserError):
    """A run's file (checkpoint, ``metrics.json``, ``predictions.npz``) cannot be read."""


def find_user_error(error: BaseException) -> UserError | None:
    """``error`` itself if it is a UserError, else the first one it was raised from.

    Hydra's ``instantiate`` and OmegaConf's resolvers wrap what a constructor or a resolver raises
    ("Error in call to target ..."); the UserError is then found in the exception's
    ``__cause__`` / ``__context__`` chain.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
