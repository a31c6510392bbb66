"""cli: the real `bulkpatch check` command, its output, exit codes and report paths."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLES


def test_clean_workbook_exits_0_and_prints_summary_and_paths(cli, tmp_path):
    result = cli("check", SAMPLES / "month-end.xlsx")
    assert result.returncode == 0, result.stderr
    assert (
        "Checked month-end.xlsx [Subscriptions] (subscriptions, 12 rows): 12 valid" in result.stdout
    )
    assert "Checked month-end.xlsx [Orders] (orders, 8 rows): 8 valid" in result.stdout
    folder = next((tmp_path / "reports").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == [
        "check-orders.csv",
        "check-subscriptions.csv",
        "check.xlsx",
    ]
    assert str(Path("reports") / folder.name / "check.xlsx") in result.stdout


def test_sample_with_mistakes_exits_1_and_names_row_column_value(cli, tmp_path):
    result = cli("check", SAMPLES / "subscriptions-true-up.csv", "--out", tmp_path / "o")
    assert result.returncode == 1
    assert "37 rows): 28 valid, 8 invalid, 1 no_change" in result.stdout
    assert 'row 4: Quantity: "5.5" is not a whole number' in result.stdout
    assert (tmp_path / "o" / "check.csv").exists()


def test_json_summary_is_one_object_on_stdout(cli, tmp_path):
    result = cli("check", SAMPLES / "subscriptions-true-up.csv", "--json", "--out", tmp_path)
    summary = json.loads(result.stdout)
    assert result.returncode == 1
    assert (summary["rows"], summary["valid"], summary["invalid"], summary["no_change"]) == (
        37,
        28,
        8,
        1,
    )
    assert summary["sheets"][0]["problems_by_rule"]["not a whole number"] == 2
    assert summary["sheets"][0]["problems_by_code"]["integer.not_whole"] == 1  # and 1 "1,000"
    assert {
        "row": 4,
        "column": "Quantity",
        "value": "5.5",
        "code": "integer.not_whole",
        "rule": "not a whole number",
        "message": 'Quantity: "5.5" is not a whole number',
    } in summary["sheets"][0]["problems"]
    assert summary["reports"] == [
        str(tmp_path / "check.csv"),
        str(tmp_path / "check.xlsx"),
        str(tmp_path / "to-fix.csv"),  # the 8 invalid rows, to fix and check again
    ]


def test_unusable_input_exits_2_with_one_line_and_no_traceback(cli, quirk):
    for name in ("empty.csv", "not-a-sheet.pdf", "missing-column.csv", "unrecognised.csv"):
        result = cli("check", quirk(name))
        assert result.returncode == 2, name
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bulkpatch: "), result.stderr
        assert name in lines[0]


def test_verbose_shows_the_traceback(cli, quirk):
    result = cli("check", quirk("empty.csv"), "--verbose")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_sheet_and_kind_options(cli, tmp_path):
    result = cli(
        "check", SAMPLES / "month-end.xlsx", "--sheet", "Orders", "--json", "--out", tmp_path / "o"
    )
    summary = json.loads(result.stdout)
    assert [s["kind"] for s in summary["sheets"]] == ["orders"]
    result = cli("check", SAMPLES / "month-end.xlsx", "--sheet", "Invoices")
    assert result.returncode == 2 and "has no sheet 'Invoices'" in result.stderr
    result = cli("check", SAMPLES / "month-end.xlsx", "--kind", "invoices")
    assert result.returncode == 2 and "invoices" in result.stderr


def test_header_only_sheet_checks_zero_rows(cli, quirk, tmp_path):
    result = cli("check", quirk("header-only.csv"), "--out", tmp_path / "o")
    assert result.returncode == 0
    assert "(subscriptions, 0 rows)" in result.stdout
    assert "header-only.csv has headers and no rows below them: nothing to do." in result.stdout


def test_python_dash_m_and_console_script_agree(tmp_path):
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).parent / "bulkpatch"
    assert script.exists() or shutil.which("bulkpatch")
    result = subprocess.run(
        [str(script if script.exists() else "bulkpatch"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "check" in result.stdout


def test_every_command_shows_how_each_column_was_read_before_anything_else(cli, tmp_path):
    sample = SAMPLES / "subscriptions-true-up.csv"
    checked = cli("check", sample, "--out", tmp_path / "c")
    planned = cli("plan", sample, "--target", "sandbox", "--out", tmp_path / "p")
    applied = cli("apply", sample, "--target", "sandbox", "--out", tmp_path / "a", "--json")
    for result in (checked, planned):
        lines = result.stderr.splitlines()
        assert lines[0] == "Columns of subscriptions-true-up.csv:"
        # `Customer` names the customer of a row without ids (matching); beside ids, never sent
        assert lines[1].split()[:3] == ["Customer", "match", "match:company"]
        assert lines[1].endswith("finds the customer of a row without ids; never sent")
        assert "  Current seats       expected  quantity" in result.stderr
        assert "  Quantity            set       quantity" in result.stderr
    mapping = json.loads(applied.stdout)["sheets"][0]["mapping"]
    assert {"header": "Product", "role": "expected"}.items() <= mapping[3].items()
    assert [m["role"] for m in mapping[:3]] == ["match", "key", "key"]


def test_a_misspelled_header_stops_the_run_unless_declared_a_note(cli, quirk, tmp_path):
    stopped = cli("check", quirk("misspelled-header.csv"), "--out", tmp_path / "a")
    noted = cli(
        "check", quirk("misspelled-header.csv"), "--out", tmp_path / "b", "--note", "Quantitiy"
    )
    assert stopped.returncode == 2
    assert "Column 'Quantitiy' is not a field bulkpatch knows. Did you mean 'Quantity'?" in (
        stopped.stderr
    )
    assert "--note 'Quantitiy'" in stopped.stderr
    assert noted.returncode == 0 and "1 no_change" in noted.stdout
    assert "  Quantitiy        note" in noted.stderr


def test_version_and_json_on_failure(cli, tmp_path):
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("bulkpatch 0.")
    for command in ("check", "plan", "apply"):
        failed = cli(command, tmp_path / "missing.csv", "--json")
        assert failed.returncode == 2
        assert json.loads(failed.stdout) == {
            "error": f"{tmp_path / 'missing.csv'}: no such file; check its name and folder.",
            "exit_code": 2,
        }
    unknown = cli("auth", "status", "--json", "--profile", "nope")
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["exit_code"] == 2
    assert "--profile nope" in json.loads(unknown.stdout)["error"]
    nobody = cli("auth", "status", "--json")
    assert nobody.returncode == 1 and json.loads(nobody.stdout)["signed_in"] is False
    reset = cli("sandbox", "reset", "--json")
    assert reset.returncode == 0 and json.loads(reset.stdout)["reset"] is True


def test_plan_tells_the_whole_story_and_exits_1_when_rows_would_not_go(cli, tmp_path):
    result = cli("plan", SAMPLES / "subscriptions-true-up.csv", "--out", tmp_path / "p")
    assert result.returncode == 1
    out = result.stdout
    assert "37 rows): 28 valid, 8 invalid, 1 no_change" in out  # as check says it
    assert '  row 4: Quantity: "5.5" is not a whole number' in out
    assert "  row 11: Partner Center would refuse it (The subscription is suspended" in out
    assert "26 change (to send), 1 no_change, 0 conflict" in out
    assert "2 would_fail; 8 rows invalid" in out
    # the samples name the same subscriptions with different beliefs: a fresh sandbox for this one
    assert cli("sandbox", "reset").returncode == 0
    clean = cli("plan", SAMPLES / "month-end.xlsx", "--out", tmp_path / "q", "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["invalid_rows"] == 0
