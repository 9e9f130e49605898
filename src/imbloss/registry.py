"""A name -> item registry whose unknown-name error lists the accepted names.

The losses, the datasets and the imbalance protocols each keep one, filled by decorators at import.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from imbloss.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Items registered once each under a name; ``get`` of an unknown name is a ConfigError."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        """Register ``item`` under ``name``; a second registration of a name is a bug."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def get(self, name: str) -> T:
        """The item registered as ``name``; a ConfigError naming the accepted names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; accepted: {', '.join(self.names())}"
            ) from None
