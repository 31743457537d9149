"""Bad input reported field by field, the one shape every eohub error for a caller takes.

Launch options, repository specs and accounting events each collect every problem as
``{field: message}``, so that the form, the hub's REST API and the accounting API can
answer one 400 that lists them all. Their errors are subclasses of :class:`FieldErrors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FieldErrors(ValueError):
    """Input that cannot be used; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Rebuilt from its fields: an error crosses from the store's writer process.
        return (type(self), (self.errors,))


def describe(value: object) -> str:
    """A value quoted for a message: shortened, so that a huge input is not echoed back."""
    text = repr(value)
    if len(text) <= 66:
        return text
    return text[:60] + ("...'" if isinstance(value, str) else "...")
