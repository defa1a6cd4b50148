"""Sphinx configuration for Flask-CallTransfer.

The HTML theme is the Pallets one that Flask and its extensions use (``pallets-sphinx-themes``, in the
dev extras), configured as Flask's own ``docs/conf.py`` does.
"""

from __future__ import annotations

import re
import typing as t

from docutils import nodes
from sphinx import addnodes

import flask_calltransfer
import flask_calltransfer.extension

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

# Project --------------------------------------------------------------

project = "Flask-CallTransfer"
copyright = "2026, the Flask-CallTransfer team"
author = "the Flask-CallTransfer team"
version = release = flask_calltransfer.__version__

# General --------------------------------------------------------------

master_doc = "index"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "pallets_sphinx_themes"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Type aliases that autodoc cannot resolve are documented in prose instead.
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
exclude_patterns = ["_build"]

# HTML -----------------------------------------------------------------

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
singlehtml_sidebars = {"index": ["project.html", "localtoc.html"]}
html_title = f"Flask-CallTransfer Documentation ({version})"
html_static_path = ["_static"]
# Long inline code, signatures and tables must not widen a page (tests/test_docs_render.py).
html_css_files = ["calltransfer.css"]
html_show_sourcelink = False
# The banner compares this version with the newest release on PyPI, where the package is not yet
# published: it would fetch a page that does not exist on every page view.
version_banner = False

# Signatures -----------------------------------------------------------


# The decorators are typed with TypeVars bound to the handler aliases (RequestHandler, ErrorHandler,
# EventHandler in flask_calltransfer/extension.py), so that a decorated function keeps its own type.
# In the rendered signatures the TypeVar names mean nothing to a reader: show the alias each one is
# bound to instead. autodoc has no single hook for this (the ``@overload`` variants bypass
# autodoc-process-signature, and autodoc_type_aliases expands an alias into the whole Callable[...]
# it stands for), so the names are replaced in the read document, in signatures and in the
# parameter and return types alike.
def handler_typevars() -> dict[str, str]:
    """Each TypeVar of the extension module that is bound to one of its aliases, by name: e.g.
    ``{"T_request_handler": "RequestHandler"}``."""
    namespace = vars(flask_calltransfer.extension)
    names = {}
    for name, value in namespace.items():
        if isinstance(value, t.TypeVar) and value.__bound__ is not None:
            for alias, target in namespace.items():
                if target is value.__bound__ and not alias.startswith("_"):
                    names[name] = alias
    return names


TYPEVAR_NAMES = handler_typevars()
_TYPEVAR = re.compile(r"(?:~?[\w.]+\.)?\b(" + "|".join(TYPEVAR_NAMES) + r")\b")


def readable_typevars(text: str) -> str:
    """Replace each handler TypeVar name (qualified or not) with the alias it is bound to."""
    if not TYPEVAR_NAMES:
        return text
    return _TYPEVAR.sub(lambda match: TYPEVAR_NAMES[match.group(1)], text)


def replace_typevars(app: Sphinx, doctree: nodes.document) -> None:
    for desc in doctree.findall(addnodes.desc):
        for xref in desc.findall(addnodes.pending_xref):
            target = xref.get("reftarget")
            if isinstance(target, str):
                xref["reftarget"] = readable_typevars(target)
        for text in list(desc.findall(nodes.Text)):
            new = readable_typevars(str(text))
            if new != str(text) and text.parent is not None:
                text.parent.replace(text, nodes.Text(new))


def setup(app: Sphinx) -> None:
    app.connect("doctree-read", replace_typevars)
