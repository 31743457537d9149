"""The database driver behind an accounting database URL: chosen, and checked installed.

PostgreSQL works through psycopg 3 and through psycopg2, which the Zero to JupyterHub
hub image ships. A bare ``postgresql://`` URL takes whichever of the two is installed,
psycopg 3 first, instead of SQLAlchemy's own default (psycopg2 before SQLAlchemy 2.1,
psycopg since), so the same URL works in any image that has either. A URL that names a
driver that is not installed is refused with what to install, not an ImportError.
"""

from __future__ import annotations

import importlib

from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchModuleError

from eohub.logs import get_logger

log = get_logger(__name__)

# The PostgreSQL drivers eohub is tested on, in the order a bare URL prefers them.
POSTGRESQL_DRIVERS = ("psycopg", "psycopg2")
# What to install for the drivers an admin is likely to name (SQLAlchemy's names).
INSTALL = {
    "psycopg": "'psycopg[binary]' (the extra eohub[postgres])",
    "psycopg2": "psycopg2-binary (the extra eohub[postgres2])",
    "pymysql": "PyMySQL (the extra eohub[mysql])",
    "mysqldb": "mysqlclient, or write mysql+pymysql:// and pip install PyMySQL",
}


class DriverNotInstalledError(ValueError):
    """The URL's database driver cannot be imported here; the message says what to install."""


def _importable(module: str) -> bool:
    # An import, not a look-up: psycopg installed without its libpq fails only here.
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def installed_driver(url: URL) -> URL:
    """``url`` with a driver that is installed here.

    Raises
    ------
    DriverNotInstalledError
        The driver the URL names (or, for a bare ``postgresql://``, both supported ones)
        is not installed; the message names it and the package to install.
    ValueError
        SQLAlchemy knows no such database or driver.
    """
    if url.drivername == "postgresql":
        for driver in POSTGRESQL_DRIVERS:
            if _importable(driver):
                log.info(
                    "The accounting database URL postgresql:// names no driver: using {driver}",
                    driver=driver,
                )
                return url.set(drivername=f"postgresql+{driver}")
        raise DriverNotInstalledError(
            "The accounting database URL postgresql:// names no driver, and neither psycopg "
            f"nor psycopg2 is installed here: pip install {INSTALL['psycopg']} or "
            f"{INSTALL['psycopg2']}"
        )
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"The accounting database URL starts with {url.drivername}://, which names no "
            "database and driver SQLAlchemy knows; write postgresql+psycopg://, "
            "postgresql+psycopg2://, mysql+pymysql:// or sqlite:///"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        driver = url.get_driver_name()
        install = INSTALL.get(driver, f"the package that provides {driver}")
        raise DriverNotInstalledError(
            f"The accounting database URL names the {url.get_backend_name()} driver "
            f"{driver}, which is not installed here ({e}): pip install {install}"
        ) from None
    return url


__all__ = ["INSTALL", "POSTGRESQL_DRIVERS", "DriverNotInstalledError", "installed_driver"]
