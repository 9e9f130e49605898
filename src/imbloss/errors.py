"""Errors the command line reports as one message, without a traceback."""


class ConfigError(ValueError):
    """A bad value in the configuration: the message names it and the accepted values."""
