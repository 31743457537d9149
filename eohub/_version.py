"""The eohub version, kept in one place for setup.cfg and the docs."""

__version__ = "0.1.0.dev0"
