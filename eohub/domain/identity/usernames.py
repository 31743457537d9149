"""Login names checked before they reach a directory or a token claim lookup."""

from __future__ import annotations

import re
import unicodedata

# Conservative default: what POSIX, Kubernetes labels and JupyterHub URLs all accept.
DEFAULT_USERNAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"

# For identifiers scoped by a domain (e-mail, EGI Check-in's voperson_id "<hex>@egi.eu",
# eduPersonPrincipalName, a UPN), after lowercasing: any domain. No "%", "/" or "#":
# they would need escaping in the hub's URLs.
EMAIL_LIKE_USERNAME_PATTERN = r"[a-z0-9_][a-z0-9._+-]{0,63}@[a-z0-9-]+(?:\.[a-z0-9-]+)*"

# JupyterHub stores user names in a VARCHAR(255) column.
MAX_USERNAME_LENGTH = 255


def normalize_login_name(name: str, *, lowercase: bool = True) -> str:
    """NFKC-fold, strip and (by default) lowercase what a person typed.

    NFKC turns full-width and compatibility look-alikes into their plain forms, so the
    pattern check below sees what the directory would compare.
    """
    folded = unicodedata.normalize("NFKC", name).strip()
    return folded.lower() if lowercase else folded


def login_name_problem(name: str, pattern: re.Pattern[str]) -> str | None:
    """Why ``name`` may not be used to log in, or None if it may."""
    if not name:
        return "empty user name"
    if len(name) > MAX_USERNAME_LENGTH:
        return f"user name longer than {MAX_USERNAME_LENGTH} characters"
    if pattern.fullmatch(name) is None:
        return "user name does not match the allowed pattern"
    return None
