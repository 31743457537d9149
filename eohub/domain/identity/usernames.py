"""Login names checked before they reach a directory or a token claim lookup."""

from __future__ import annotations

import re
import unicodedata

# Conservative default: what POSIX, Kubernetes labels and JupyterHub URLs all accept.
DEFAULT_USERNAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"


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
    if pattern.fullmatch(name) is None:
        return "user name does not match the allowed pattern"
    return None
