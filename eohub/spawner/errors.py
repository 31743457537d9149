"""The errors a spawn answers with: shown to the user as they are, fields listed.

Each is an :class:`ExpectedRefusal`: the user asked for something the hub refuses (a
spent budget, a denied repository, a bad option, the policy). JupyterHub logs a failed
spawn with its traceback in several places; :func:`eohub.logs.attach` installs the
filter that keeps those lines but drops the traceback of an expected refusal, so an
operator reads one line per refusal and a traceback only for a real fault.
"""

from __future__ import annotations

from tornado import web

from eohub.domain.fields import FieldErrors


class ExpectedRefusal(web.HTTPError):
    """An HTTPError that refuses what the user asked for: logged without a traceback.

    Other eohub code may mark an exception the same way by setting the attribute named
    :data:`eohub.logs.EXPECTED_REFUSAL_ATTR` to True.
    """

    eohub_expected_refusal = True  # eohub.logs.EXPECTED_REFUSAL_ATTR


def user_error(status: int, message: str, reason: str) -> ExpectedRefusal:
    """An HTTPError whose message the spawn page and the REST API show as it is.

    JupyterHub replaces a failed spawn's ``reason`` with "error" and prints the raw
    exception on the spawn page, unless the error carries ``jupyterhub_message``.
    """
    error = ExpectedRefusal(status, message, reason=reason)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def options_error(error: FieldErrors) -> ExpectedRefusal:
    """A 400 whose message lists every bad field, as the form and REST clients show it."""
    fields = "; ".join(f"{k}: {v}" for k, v in sorted(error.errors.items()))
    return user_error(400, f"Invalid launch options ({fields})", "Invalid options")


__all__ = ["ExpectedRefusal", "options_error", "user_error"]
