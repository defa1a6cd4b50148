"""Sphinx configuration for Flask-CallTransfer."""

from __future__ import annotations

import flask_calltransfer

project = "Flask-CallTransfer"
copyright = "2026, the Flask-CallTransfer team"
version = release = flask_calltransfer.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Type aliases that autodoc cannot resolve are documented in prose instead.
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
html_theme = "alabaster"
html_theme_options = {"description": "Voice-AI call transfers for Flask", "fixed_sidebar": True}
exclude_patterns = ["_build"]
