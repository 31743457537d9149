"""The errors a spawn answers with: shown to the user as they are, fields listed."""

from __future__ import annotations

from tornado import web

from eohub.domain.fields import FieldErrors


def user_error(status: int, message: str, reason: str) -> web.HTTPError:
    """An HTTPError whose message the spawn page and the REST API show as it is.

    JupyterHub replaces a failed spawn's ``reason`` with "error" and prints the raw
    exception on the spawn page, unless the error carries ``jupyterhub_message``.
    """
    error = web.HTTPError(status, message, reason=reason)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def options_error(error: FieldErrors) -> web.HTTPError:
    """A 400 whose message lists every bad field, as the form and REST clients show it."""
    fields = "; ".join(f"{k}: {v}" for k, v in sorted(error.errors.items()))
    return user_error(400, f"Invalid launch options ({fields})", "Invalid options")


__all__ = ["options_error", "user_error"]
