"""The built HTML docs show every code block whole, on a desktop and on a phone, in a real browser.

The docs are built once (``sphinx-build -W``) and served on loopback. For each width, one headless
Chromium opens a harness page that frames every built page at that width; a copy of each page
carries a small script that measures every ``<pre>`` and the page itself and posts the result to
the harness, which writes all of them into its DOM for ``--dump-dom``. A code block passes when its
text fits, wraps, or scrolls inside a box of its own that is itself on screen; it fails when
overflow is hidden (by the block or by any ancestor) while text reaches past the edge, or when the
block pushes past the viewport. A page passes when it does not scroll sideways.

Two deliberately broken pages are framed alongside, so that the measuring script is shown to catch
what it looks for.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import html
import http.server
import json
import pathlib
import re
import subprocess
import sys
import typing as t

import pytest

from tests.servers import chromium
from tests.servers import http_server

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIDTHS = (1280, 390)
FRAME_HEIGHT = 900
CHECK_SUFFIX = ".render-check.html"
HARNESS_PREFIX = "render-check-harness-"
SELF_TESTS = {
    "selftest-cut": """<!doctype html><html><head><meta charset="utf-8"></head><body>
        <div style="width: 200px; overflow: hidden"><pre style="overflow: visible">"""
    + "x = 1  # " * 40
    + """</pre></div></body></html>""",
    "selftest-page-overflow": """<!doctype html><html><head><meta charset="utf-8"></head><body>
        <pre style="white-space: pre; overflow: visible">"""
    + "y = 2  # " * 400
    + """</pre></body></html>""",
}

MEASURE = r"""
<script>
(function () {
  var PAGE = %(page)s;
  function label(el) {
    var text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    if (typeof el.className === "string" && el.className.trim()) {
      text += "." + el.className.trim().split(/\s+/).join(".");
    }
    return text;
  }
  function scrolls(value) { return value === "auto" || value === "scroll"; }
  function clips(value) { return value === "hidden" || value === "clip"; }
  function measure() {
    var root = document.documentElement;
    var viewport = root.clientWidth;
    var blocks = [];
    document.querySelectorAll("pre").forEach(function (pre, index) {
      var style = getComputedStyle(pre);
      var rect = pre.getBoundingClientRect();
      var problems = [];
      var overflowing = pre.scrollWidth > pre.clientWidth + 1;
      var mode = !overflowing ? "fits" : scrolls(style.overflowX) ? "scrolls" : "overflows";
      if (/wrap/.test(style.whiteSpace) || style.overflowWrap === "anywhere") {
        if (!overflowing) mode = "wraps";
      }
      if (rect.width <= 0 || rect.height <= 0 || style.visibility === "hidden") {
        problems.push("not displayed");
      }
      if (clips(style.overflowX) && overflowing) problems.push("text cut by its own overflow-x");
      if (clips(style.overflowY) && pre.scrollHeight > pre.clientHeight + 1) {
        problems.push("text cut by its own overflow-y");
      }
      // How far right its text reaches on screen: its box when it scrolls, else its content.
      var right = scrolls(style.overflowX) || clips(style.overflowX)
        ? rect.right
        : rect.left + pre.clientLeft + pre.scrollWidth;
      for (var el = pre.parentElement; el && el !== root; el = el.parentElement) {
        var outer = getComputedStyle(el);
        var box = el.getBoundingClientRect();
        if (clips(outer.overflowX) && right > box.right + 1) {
          problems.push("text cut by " + label(el) + " (overflow-x: " + outer.overflowX + ")");
          right = box.right;
        } else if (scrolls(outer.overflowX)) {
          right = Math.min(right, box.right);
        }
      }
      if (right > viewport + 1) problems.push("reaches " + Math.round(right) + "px, past the viewport");
      if (rect.left < -1) problems.push("starts left of the viewport");
      blocks.push({
        index: index,
        mode: mode,
        width: Math.round(rect.width),
        text_width: pre.scrollWidth,
        start: pre.textContent.trim().split("\n")[0].slice(0, 60),
        problems: problems,
      });
    });
    var wide = [];
    document.querySelectorAll("body *").forEach(function (el) {
      if (wide.length < 5 && el.getBoundingClientRect().right > viewport + 1) {
        var inside = false;
        for (var up = el.parentElement; up && up !== root; up = up.parentElement) {
          var s = getComputedStyle(up);
          if (scrolls(s.overflowX) || clips(s.overflowX)) { inside = true; break; }
        }
        if (!inside) wide.push(label(el));
      }
    });
    var report = {
      page: PAGE,
      inner_width: window.innerWidth,
      viewport: viewport,
      page_width: Math.max(root.scrollWidth, document.body.scrollWidth),
      wide: wide,
      blocks: blocks,
    };
    root.setAttribute("data-render-report", JSON.stringify(report));
    if (window.parent !== window) window.parent.postMessage(report, "*");
  }
  window.addEventListener("load", function () {
    (document.fonts ? document.fonts.ready : Promise.resolve()).then(function () {
      requestAnimationFrame(function () { setTimeout(measure, 0); });
    });
  });
})();
</script>
"""

HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>render check</title></head>
<body style="margin: 0">
<script>
  var expected = %(count)d;
  var reports = {};
  window.addEventListener("message", function (event) {
    reports[event.data.page] = event.data;
    document.body.setAttribute("data-reports", JSON.stringify(reports));
  });
</script>
%(frames)s
</body></html>
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    work = tmp_path_factory.mktemp("docs-html")
    out = work / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(work / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def pages(out: pathlib.Path) -> list[str]:
    """Every page of the build, by name (``api`` for api.html)."""
    return sorted(
        p.stem
        for p in out.glob("*.html")
        if not p.name.endswith(CHECK_SUFFIX) and not p.name.startswith(HARNESS_PREFIX)
    )


def code_pages(out: pathlib.Path) -> list[str]:
    return [name for name in pages(out) if "<pre" in (out / f"{name}.html").read_text("utf-8")]


@contextlib.contextmanager
def serve(directory: pathlib.Path) -> t.Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

    with http_server(Handler) as base:
        yield base


def instrument(out: pathlib.Path, names: list[str]) -> None:
    """Write a copy of each page, next to it so that its links still work, with the script."""
    for name in names:
        if name in SELF_TESTS:
            source = SELF_TESTS[name]
        else:
            source = (out / f"{name}.html").read_text("utf-8")
        script = MEASURE % {"page": json.dumps(name)}
        assert "</body>" in source, name
        head, _, tail = source.rpartition("</body>")
        (out / f"{name}{CHECK_SUFFIX}").write_text(head + script + "</body>" + tail, encoding="utf-8")


def render(out: pathlib.Path, names: list[str]) -> dict[int, dict[str, t.Any]]:
    """Each page's report at each width, by width and page name."""
    instrument(out, names)
    for width in WIDTHS:
        frames = "\n".join(
            f'<iframe src="{name}{CHECK_SUFFIX}" style="display: block; border: 0;'
            f' width: {width}px; height: {FRAME_HEIGHT}px"></iframe>'
            for name in names
        )
        harness = HARNESS % {"count": len(names), "frames": frames}
        (out / f"{HARNESS_PREFIX}{width}.html").write_text(harness, encoding="utf-8")
    with serve(out) as base:

        def one(width: int) -> dict[str, t.Any]:
            dom = chromium(
                "--hide-scrollbars",
                "--virtual-time-budget=30000",
                f"--window-size={width + 40},{FRAME_HEIGHT}",
                "--dump-dom",
                f"{base}/{HARNESS_PREFIX}{width}.html",
                timeout=90,
            ).stdout.decode("utf-8")
            found = re.search(r'<body[^>]*\bdata-reports="([^"]*)"', dom)
            assert found, f"no page reported at {width} px:\n{dom[:2000]}"
            return t.cast(dict[str, t.Any], json.loads(html.unescape(found.group(1))))

        with concurrent.futures.ThreadPoolExecutor(len(WIDTHS)) as pool:
            return dict(zip(WIDTHS, pool.map(one, WIDTHS), strict=True))


@pytest.fixture(scope="module")
def reports(built: pathlib.Path) -> dict[int, dict[str, t.Any]]:
    return render(built, [*pages(built), *SELF_TESTS])


def problems(report: dict[str, t.Any]) -> list[str]:
    found = []
    if report["page_width"] > report["viewport"] + 1:
        found.append(
            f"the page is {report['page_width']} px wide in a {report['viewport']} px viewport"
            f" (sticking out: {', '.join(report['wide']) or 'nothing measurable'})"
        )
    for block in report["blocks"]:
        for problem in block["problems"]:
            found.append(f"<pre> #{block['index']} ({block['start']!r}): {problem}")
    return found


def test_every_page_was_measured_at_each_width(
    built: pathlib.Path, reports: dict[int, dict[str, t.Any]]
) -> None:
    for width, by_page in reports.items():
        missing = set(pages(built)) | set(SELF_TESTS)
        assert set(by_page) == missing, f"at {width} px, no report from {sorted(missing - set(by_page))}"
        for name, report in by_page.items():
            assert report["inner_width"] == width, (name, report["inner_width"])


def test_the_checker_catches_cut_blocks_and_page_overflow(reports: dict[int, dict[str, t.Any]]) -> None:
    for width, by_page in reports.items():
        (cut,) = by_page["selftest-cut"]["blocks"]
        assert cut["mode"] == "overflows" and any("text cut by div" in p for p in cut["problems"]), (
            width,
            cut,
        )
        overflow = by_page["selftest-page-overflow"]
        assert overflow["page_width"] > overflow["viewport"], (width, overflow)
        assert any("past the viewport" in p for p in overflow["blocks"][0]["problems"])


def test_the_pages_with_code_include_the_guides(built: pathlib.Path) -> None:
    names = code_pages(built)
    for name in ("index", "installation", "quickstart", "api", "testing", "vapi", "sipgate", "voicedock"):
        assert name in names, name


@pytest.mark.parametrize("width", WIDTHS)
def test_no_code_block_is_cut_and_no_page_scrolls_sideways(
    built: pathlib.Path, reports: dict[int, dict[str, t.Any]], width: int
) -> None:
    failures = {}
    for name in pages(built):
        report = reports[width][name]
        blocks = len(re.findall(r"<pre[\s>]", (built / f"{name}.html").read_text("utf-8")))
        assert len(report["blocks"]) == blocks, f"{name}.html has {blocks} <pre> blocks"
        found = problems(report)
        if found:
            failures[name] = found
    assert not failures, f"at {width} px:\n" + "\n".join(
        f"  {name}.html: {problem}" for name, found in failures.items() for problem in found
    )


def test_the_api_signatures_name_the_handler_aliases_not_typevars(built: pathlib.Path) -> None:
    text = html.unescape(re.sub(r"<[^>]+>", "", (built / "api.html").read_text("utf-8")))
    assert not re.findall(r"\bT_\w+", text)
    for signature in (
        "on_request(func: RequestHandler, /) → RequestHandler",
        "→ Callable[[RequestHandler], RequestHandler]",
        "func (ErrorHandler)",
        "Callable[[EventHandler], EventHandler]",
    ):
        assert signature in text, signature
