"""A Sphinx extension that writes every literal block of the built docs to a JSON file.

Loaded only by ``tests/test_docs.py``, through a configuration directory that runs the real
``docs/conf.py`` first, so the blocks are the ones readers see, docstrings pulled in by autodoc
included.
"""

from __future__ import annotations

import json
import os
import typing as t

from docutils import nodes

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

BLOCKS: list[dict[str, t.Any]] = []


def _read(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    for node in doctree.findall(lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block))):
        BLOCKS.append(
            {
                "docname": docname,
                "kind": "doctest" if isinstance(node, nodes.doctest_block) else "literal",
                # A block written as ``::`` or ``.. code-block::`` without a language has no
                # explicit language in its raw source; the highlight transform fills in "default".
                "language": node.get("language", "default"),
                "source": node.source or "",
                "line": node.line or 0,
                "code": node.astext(),
            }
        )


def _finished(app: Sphinx, exception: BaseException | None) -> None:
    if exception is None:
        with open(os.environ["DOCS_BLOCKS_OUT"], "w", encoding="utf-8") as out:
            json.dump(BLOCKS, out)


def setup(app: Sphinx) -> dict[str, t.Any]:
    app.connect("doctree-read", _read)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": False}
