"""Sphinx configuration for the eohub docs (MyST, pydata-sphinx-theme, autodoc-traits)."""

import sys
from pathlib import Path

import eohub

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "eohub"
author = "eohub contributors"
copyright = "2026, eohub contributors"
version = release = eohub.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "autodoc_traits",
    "config_reference",
    "openapi_reference",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_ext"]
autodoc_typehints = "description"
napoleon_numpy_docstring = True

html_theme = "pydata_sphinx_theme"
html_title = f"eohub {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
