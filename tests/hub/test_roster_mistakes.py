"""Roster CSVs with mistakes: every problem names the file, the line and the field, and
nothing is imported (the file as a whole is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.accounts import AccountStore
from hub.roster import RosterError, check_roster, read_roster


def problems(store: AccountStore, path: Path, text: str) -> list[str]:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RosterError) as caught:
        check_roster(store, read_roster(path), path.name)
    return caught.value.problems


def test_each_bad_field_is_named_with_its_line(store: AccountStore, tmp_path: Path) -> None:
    found = problems(store, tmp_path / "class.csv",
                     "username,display_name,tenant,role,password\n"
                     "kim,Kim,school_a,student,\n"
                     "Not Valid,Someone,school_a,student,\n"
                     "lee,Lee,school_zz,student,\n"
                     "han,Han,school_a,headmaster,\n"
                     f"park,{'P' * 500},school_a,student,\n"
                     "choi,Choi,school_a,student,password\n")
    assert found == [
        "class.csv:3: Username 'Not Valid' is not valid: use 1-64 lower-case letters, digits, "
        "'.', '_' or '-', starting with a letter.",
        found[1], found[2], found[3], found[4],
    ]
    assert found[1].startswith("class.csv:4: ") and "school 'school_zz'" in found[1]
    assert found[2].startswith("class.csv:5: Role 'headmaster'")
    assert found[3].startswith("class.csv:6: The display name")
    assert found[4].startswith("class.csv:7: ") and "password" in found[4]
    assert store.list() == []


@pytest.mark.parametrize("text,expected", [
    ("username,display_name,tenant\nkim,Kim,school_a\n", "r.csv:1: missing column(s) role"),
    ("username,display_name,tenant,role,shoe_size\n", "r.csv:1: unknown column(s) shoe_size"),
    ("username,display_name,tenant,role\nkim,Kim,school_a\n",
     "r.csv:2: 3 values for 4 columns"),
    ('username,display_name,tenant,role\nkim,"Kim,school_a,student\n', "r.csv:"),
])
def test_broken_csv_names_the_line(store: AccountStore, tmp_path: Path, text: str,
                                   expected: str) -> None:
    found = problems(store, tmp_path / "r.csv", text)
    assert any(p.startswith(expected) for p in found), found
