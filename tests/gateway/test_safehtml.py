"""The one escaping helper (``gateway.safehtml``), and the rule that HTML with data in it
is never an f-string anywhere in the product (modules and notebooks)."""

from __future__ import annotations

import ast
import json
import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from gateway.safehtml import Safe, escape, html, join, link
from tests.support.procs import REPO

PAYLOADS = [
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", '"><svg onload=alert(1)>',
    "' onmouseover='alert(1)", "&lt;script&gt;", "</h4><script>x</script>",
]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Collect:
    parser = _Collect()
    parser.feed(markup)
    parser.close()
    return parser


@given(st.one_of(st.sampled_from(PAYLOADS), st.text()),
       st.one_of(st.sampled_from(PAYLOADS), st.text()))
def test_values_come_out_as_text_and_attribute_values_never_as_markup(
    text: str, attr: str
) -> None:
    parsed = parse(html('<div class="x" title="{}"><b>{}</b></div>', attr, text))
    assert [tag for tag, _ in parsed.tags] == ["div", "b"]  # no tag came from the values
    assert parsed.tags[0][1] == [("class", "x"), ("title", attr)]
    assert "".join(parsed.text) == text


def test_pieces_nest_without_being_escaped_twice() -> None:
    inner = html("<i>{}</i>", "a & b")
    outer = html("<b>{}</b>{}", inner, "<c>")
    assert outer == "<b><i>a &amp; b</i></b>&lt;c&gt;"
    assert isinstance(outer, Safe) and isinstance(outer, str)
    assert join([inner, "<x>"], " · ") == "<i>a &amp; b</i> · &lt;x&gt;"
    assert html("{:.3f} {n}", 1.23456, n="<n>") == "1.235 &lt;n&gt;"
    assert escape(None) == "" and escape("'\"") == "&#39;&#34;"


def test_links_keep_only_http_https_mailto_and_relative() -> None:
    for bad in ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)",
                "\x01javascript:alert(1)", "data:text/html,<script>x</script>", "vbscript:x"]:
        assert link(bad) == "#", bad
    for good in ["https://example.org/a?b=1", "http://x", "/hub/classroom", "lessons/01.ipynb",
                 "mailto:t@school.example"]:
        assert link(good) == good
    assert (html('<a href="{}">x</a>', link('/a"><script>'))
            == '<a href="/a&#34;&gt;&lt;script&gt;">x</a>')


# -- the rule: no f-string HTML with data in it ---------------------------------------------

_TAG = re.compile(r"<[a-zA-Z/!][^>]*>?")
SOURCES = [p for top in ("gateway", "hub", "extensions") for p in (REPO / top).rglob("*.py")]
NOTEBOOKS = sorted((REPO / "notebooks").rglob("*.ipynb"))


def _html_fstrings(tree: ast.AST) -> list[int]:
    """Lines of f-strings that start like HTML and interpolate something (not in ``__repr__``)."""
    found = []
    reprs = {id(n) for f in ast.walk(tree)
             if isinstance(f, ast.FunctionDef) and f.name == "__repr__" for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and id(node) not in reprs:
            parts = node.values
            has_value = any(isinstance(p, ast.FormattedValue) for p in parts)
            text = "".join(p.value for p in parts
                           if isinstance(p, ast.Constant) and isinstance(p.value, str))
            if has_value and _TAG.search(text):
                found.append(node.lineno)
    return found


def test_no_module_builds_html_with_an_fstring() -> None:
    offenders = {str(p.relative_to(REPO)): lines for p in SOURCES
                 if (lines := _html_fstrings(ast.parse(p.read_text(), str(p))))}
    assert offenders == {}


def test_no_notebook_builds_html_with_an_fstring() -> None:
    offenders = {}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                source = "\n".join(line for line in source.splitlines()
                                   if not line.lstrip().startswith(("%", "!")))
                if lines := _html_fstrings(ast.parse(source)):
                    offenders[f"{path.relative_to(REPO)} cell {i}"] = lines
    assert offenders == {}
