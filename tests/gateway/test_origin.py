"""The notebook and cell a call claims to come from (gateway.edge.origin): bounded, never markup,
never identity. Properties over any header value a student's kernel could send."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from gateway.edge.origin import (
    MAX_NOTEBOOK_CHARS,
    NOWHERE,
    Origin,
    calls_from,
    clean_cell,
    clean_notebook,
    clean_position,
    current_origin,
    origin_of,
    origin_of_scope,
)

BAD = ("Cc", "Cf", "Cs", "Zl", "Zp")
# One part of a path as a person names files: any printable text, HTML included.
part = st.text(
    st.characters(blacklist_categories=BAD, blacklist_characters="/\\"), min_size=1, max_size=30
).filter(lambda p: p not in (".", "..") and p == p.strip())


@given(st.text(max_size=400))
def test_whatever_is_sent_what_is_kept_is_a_bounded_relative_path(value: str) -> None:
    for header in (value, quote(value, safe="/")):
        kept = clean_notebook(header)
        if kept is None:
            continue
        assert 0 < len(kept) <= MAX_NOTEBOOK_CHARS
        assert not kept.startswith("/") and "\\" not in kept
        parts = kept.split("/")
        assert ".." not in parts and "." not in parts and "" not in parts
        assert not any(unicodedata.category(ch) in BAD for ch in kept)
        # Stable: what was kept, sent again, is kept as it is.
        assert clean_notebook(quote(kept, safe="/")) == kept


@given(st.lists(part, min_size=1, max_size=5))
def test_a_real_file_name_arrives_as_it_was_named(parts: list[str]) -> None:
    path = unicodedata.normalize("NFC", "/".join(parts))
    if len(path) > MAX_NOTEBOOK_CHARS or any(p != p.strip() for p in path.split("/")):
        return
    assert clean_notebook(quote(path, safe="/")) == path


def test_odd_paths_are_dropped_not_errors() -> None:
    assert clean_notebook("lessons/01_first_chat.ipynb") == "lessons/01_first_chat.ipynb"
    assert clean_notebook("/home/x/./lessons//a.ipynb") is None  # empty part
    assert clean_notebook("./lessons/a.ipynb") == "lessons/a.ipynb"
    assert clean_notebook("lessons/%ED%95%9C%EA%B8%80.ipynb") == "lessons/한글.ipynb"
    for bad in ("", "../etc/passwd", "lessons/../../x", "a\\b.ipynb", "a%0Ab.ipynb",
                "%FF%FE.ipynb", "x" * 300, "/".join("a" * 17), "a/%E2%80%AEcod.ipynb", "/"):
        assert clean_notebook(bad) is None, bad
    # HTML is a legal file name: kept as text (escaped wherever it is shown).
    assert clean_notebook(quote("<img src=x onerror=alert(1)>.ipynb")) == (
        "<img src=x onerror=alert(1)>.ipynb")


@given(st.text(max_size=100))
def test_a_cell_id_is_an_nbformat_id_or_nothing(value: str) -> None:
    kept = clean_cell(value)
    assert kept is None or (1 <= len(kept) <= 64 and kept.isascii()
                            and all(c.isalnum() or c in "-_" for c in kept))


@given(st.text(max_size=30))
def test_a_position_is_within_its_notebook_or_nothing(value: str) -> None:
    kept = clean_position(value)
    assert kept is None or 1 <= kept[0] <= kept[1] <= 10_000


def test_positions() -> None:
    assert clean_position("7/12") == (7, 12)
    for bad in ("0/3", "4/3", "1/10001", "-1/3", "1/", "/3", "a/b", "١/٢", "1/2/3", " "):
        assert clean_position(bad) is None, bad


def test_a_cell_needs_a_notebook_and_a_position_needs_a_cell() -> None:
    assert origin_of({"x-classroom-cell": "abc"}) == NOWHERE
    assert origin_of({"x-classroom-notebook": "n.ipynb", "x-classroom-cell-position": "1/2"}) == (
        Origin("n.ipynb"))
    assert origin_of({"x-classroom-notebook": "n.ipynb", "x-classroom-cell": "c-1",
                      "x-classroom-cell-position": "1/2"}) == Origin("n.ipynb", "c-1", 1, 2)


def test_the_first_header_counts_and_the_origin_lasts_for_its_block() -> None:
    scope = {"headers": [(b"x-classroom-notebook", b"a.ipynb"),
                         (b"x-classroom-notebook", b"b.ipynb"), (b"x-classroom-cell", b"c1")]}
    origin = origin_of_scope(scope)
    assert origin == Origin("a.ipynb", "c1")
    assert current_origin() == NOWHERE
    with calls_from(origin):
        assert current_origin() == origin
    assert current_origin() == NOWHERE
