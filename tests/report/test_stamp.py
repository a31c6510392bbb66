"""What a report says it is: sandbox or production, tenant, input and its SHA-256, when, how."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import metadata

import openpyxl
from conftest import FAST, SAMPLES, server, true_up

from bulkpatch.commands.apply import apply_file
from bulkpatch.report.stamp import command_line
from bulkpatch.settings import load_profile

TENANT = "6b2f7c1e-0000-4000-8000-00000000ab01"


def summary_lines(book: openpyxl.Workbook) -> dict[str, str]:
    sheet = book["Summary"]
    return {r[0]: r[1] for r in sheet.iter_rows(min_row=2, max_row=10, values_only=True)}


def test_a_sandbox_result_says_so_first_with_its_input_hash_times_and_command(cli, tmp_path):
    sample = SAMPLES / "month-end.xlsx"
    result = cli("apply", sample, "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0
    book = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx")
    assert book.sheetnames[0] == "Summary"  # the first page a reader sees
    banner = book["Summary"]["A1"]
    assert banner.value == "SANDBOX (built-in): nothing in Partner Center changed"
    assert banner.fill.fgColor.rgb.endswith("DDEBF7")
    lines = summary_lines(book)
    assert lines["Input file"] == "month-end.xlsx"
    assert lines["Input SHA-256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert lines["Run folder"] == str((tmp_path / "run").resolve())
    assert lines["Partner tenant"] == "none (a sandbox)"
    assert lines["bulkpatch version"] == metadata.version("bulkpatch")
    moment = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(.+\)"  # with its time zone
    assert re.fullmatch(moment, lines["Started"]) and re.fullmatch(moment, lines["Finished"])
    assert lines["Started"] <= lines["Finished"]
    assert lines["Command"] == f"bulkpatch apply {sample} --out {tmp_path / 'run'} --quiet"
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert next(iter(written)) == "report"  # it opens with what it is
    report = written["report"]
    assert report["where"] == "sandbox" and report["input_sha256"] == lines["Input SHA-256"]
    titles = [r[0] for r in book["Summary"].iter_rows(values_only=True)]
    seats = titles.index("Seats added and removed per customer and offer")
    header = [c.value for c in book["Summary"][seats + 2]]
    assert header[:8] == [  # issue 24: the customer's name as the sheet gives it, then its id
        "customer",
        "customer id",
        "offer",
        "subscriptions",
        "seats before",
        "seats after",
        "added",
        "removed",
    ]


def test_a_production_result_is_red_names_the_partner_tenant_and_never_the_token(
    tmp_path, monkeypatch
):
    claims = {"tid": TENANT, "upn": "finance@contoso.example", "exp": 4102444800}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    token = f"eyJhbGciOiJub25lIn0.{payload}.signature-part"
    monkeypatch.setenv("BULKPATCH_TOKEN", token)
    path = true_up(tmp_path, customers=1, per=2)
    with server(path) as (url, _):
        (tmp_path / "bulkpatch.toml").write_text(f'[profiles.default]\napi_url = "{url}"\n')
        profile = load_profile(None, tmp_path)
        run = apply_file(
            path,
            out=tmp_path / "run",
            settings=FAST,
            profile=profile,
            confirm=lambda prepared, preview: True,
        )
    book = openpyxl.load_workbook(run.folder / "results.xlsx")
    banner = book["Summary"]["A1"]
    assert banner.value == f"PRODUCTION: Partner Center itself ({url})"
    assert banner.fill.fgColor.rgb.endswith("C00000")
    assert summary_lines(book)["Partner tenant"] == TENANT
    assert summary_lines(book)["Command"] == "(from Python)"
    written = [(run.folder / n).read_bytes() for n in ("summary.json", "results.csv", "run.json")]
    assert all(token.encode() not in data and payload.encode() not in data for data in written)
    cells = [str(v) for ws in book for r in ws.iter_rows(values_only=True) for v in r if v]
    assert not [c for c in cells if payload in c]


def test_the_command_line_hides_secrets_and_tokens():
    jwt = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.sig"
    shown = command_line(["apply", "a b.csv", "--client-secret", "hunter2", f"--token={jwt}", jwt])
    assert shown == "bulkpatch apply 'a b.csv' --client-secret '***' '--token=***' '***'"
