"""``classroom accounts import``: a good roster, a bad row, a re-import with changes."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

from hub.accounts import AccountStore

from .test_cli import accounts, classroom

GOOD = """username,display_name,tenant,role,password
kim,Kim Minji,school_a,student,
lee,Lee Jun,school_a,student,lee-chose-this-1
park,Park Teacher,school_a,teacher,
choi,Choi Seoyeon,school_b,student,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def credentials(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as file:
        return {row["username"]: row for row in csv.DictReader(file)}


def test_good_roster_creates_accounts_and_a_private_credentials_file(
    data_dir: Path, tmp_path: Path
) -> None:
    roster = write(tmp_path / "class.csv", GOOD)
    out_file = tmp_path / "handout.csv"

    result = classroom(data_dir, "accounts", "import", str(roster), "--credentials", str(out_file))

    assert result.returncode == 0, result.stderr
    assert "4 created, 0 updated, 0 unchanged" in result.stdout
    assert str(out_file) in result.stdout
    assert "lee-chose-this-1" not in result.stdout
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    handout = credentials(out_file)
    assert set(handout) == {"kim", "park", "choi"}  # lee brought a password
    store = accounts(data_dir)
    for name, row in handout.items():
        account = store.verify(name, row["password"])
        assert account is not None and account.tenant == row["tenant"]
    assert store.verify("lee", "lee-chose-this-1").display_name == "Lee Jun"
    assert store.get("park").role == "teacher"
    assert store.get("choi").tenant == "school_b"


def test_a_bad_row_is_reported_by_line_and_nothing_is_applied(
    data_dir: Path, tmp_path: Path
) -> None:
    roster = write(
        tmp_path / "class.csv",
        "Username,Display_Name,Tenant,Role\n"
        "kim,Kim Minji,school_a,student\n"
        "\n"
        "Bad Name,Someone,school_a,student\n"
        "lee,Lee Jun,school_z,student\n"
        "han,Han,school_a,principal\n"
        "kim,Kim Again,school_a,student\n",
    )

    result = classroom(data_dir, "accounts", "import", str(roster))

    assert result.returncode == 1
    err = result.stderr
    assert "class.csv:4:" in err and "Bad Name" in err
    assert "class.csv:5:" in err and "school_z" in err
    assert "class.csv:6:" in err and "principal" in err
    assert "class.csv:7:" in err and "line 2" in err
    assert "Nothing was imported (4 problems)" in err
    assert "Traceback" not in err
    assert accounts(data_dir).list() == []
    assert list(tmp_path.glob("*credentials*")) == []


def test_common_password_in_a_roster_is_refused(data_dir: Path, tmp_path: Path) -> None:
    roster = write(
        tmp_path / "r.csv",
        "username,display_name,tenant,role,password\nkim,Kim,school_a,student,password123\n",
    )
    result = classroom(data_dir, "accounts", "import", str(roster))
    assert result.returncode == 1
    assert "r.csv:2:" in result.stderr and "common" in result.stderr
    assert accounts(data_dir).get("kim") is None


def test_missing_column_is_refused(data_dir: Path, tmp_path: Path) -> None:
    roster = write(tmp_path / "r.csv", "username,tenant,role\nkim,school_a,student\n")
    result = classroom(data_dir, "accounts", "import", str(roster))
    assert result.returncode == 1
    assert "r.csv:1: missing column(s) display_name" in result.stderr


def test_reimport_updates_changes_keeps_passwords_and_adds_newcomers(
    data_dir: Path, tmp_path: Path
) -> None:
    first_out = tmp_path / "first.csv"
    first = classroom(
        data_dir, "accounts", "import", str(write(tmp_path / "class.csv", GOOD)),
        "--credentials", str(first_out),
    )
    assert first.returncode == 0, first.stderr
    kim_password = credentials(first_out)["kim"]["password"]
    accounts(data_dir).disable("choi")

    changed = write(
        tmp_path / "class2.csv",
        "username,display_name,tenant,role,password\n"
        "kim,Kim Minji,school_b,student,\n"  # moved school
        "lee,Lee Jun (2nd year),school_a,student,\n"  # renamed
        "park,Park Teacher,school_a,teacher,\n"  # same
        "choi,Choi Seoyeon,school_b,student,\n"  # same, disabled
        "yoon,Yoon,school_a,student,\n"  # new
    )
    second_out = tmp_path / "second.csv"
    second = classroom(
        data_dir, "accounts", "import", str(changed), "--credentials", str(second_out)
    )

    assert second.returncode == 0, second.stderr
    assert "1 created, 2 updated, 2 unchanged" in second.stdout
    assert "Still disabled: choi" in second.stdout
    assert set(credentials(second_out)) == {"yoon"}
    store: AccountStore = accounts(data_dir)
    assert store.verify("kim", kim_password).tenant == "school_b"
    assert store.verify("lee", "lee-chose-this-1").display_name == "Lee Jun (2nd year)"
    assert store.get("choi").disabled


def test_import_without_a_hub_says_groups_come_at_sign_in(data_dir: Path, tmp_path: Path) -> None:
    roster = write(tmp_path / "class.csv", GOOD)
    result = classroom(
        data_dir, "accounts", "import", str(roster), "--credentials", str(tmp_path / "c.csv")
    )
    assert result.returncode == 0, result.stderr
    assert "first sign-in" in result.stdout
