"""The web page's routes with Starlette's test client: what keeps it private, and the flow
check -> plan -> confirm -> results over the command layer, against the built-in sandbox."""

from __future__ import annotations

import csv
import html
import io
import os
import re
import time
from collections import Counter

import openpyxl
import pytest
from conftest import (
    HOST,
    NAMES_ONLY,
    SAMPLES,
    Page,
    as_workbook,
    counts,
    followed,
    interrupt,
    job_of,
    planned,
    sent,
    shown_rows,
    start_ui,
)
from starlette.testclient import TestClient

from bulkpatch import plan_file
from bulkpatch.sandbox.customers import LOOKALIKE_ID
from bulkpatch.ui.server import allowed_hosts

SAMPLE = SAMPLES / "subscriptions-true-up.csv"


# --- the session token, the Host header, the headers ----------------------------------------


def test_without_the_token_the_page_refuses_and_says_what_to_open(tmp_path):
    fresh = Page(tmp_path / "reports")
    refused = fresh.client.get("/")
    assert refused.status_code == 403
    assert "Open the address `bulkpatch ui` printed" in refused.text
    assert fresh.client.get("/static/ui.css").status_code == 403


def test_the_token_becomes_a_strict_cookie_once_and_leaves_the_address_bar(tmp_path):
    fresh = Page(tmp_path / "reports")
    traded = fresh.client.get(f"/?token={fresh.session.token}", follow_redirects=False)
    assert traded.status_code == 303 and traded.headers["location"] == "/"
    cookie = traded.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert fresh.client.get("/").status_code == 200
    other = TestClient(fresh.client.app, base_url=f"http://{HOST}")  # another browser
    assert other.get(f"/?token={fresh.session.token}").status_code == 403


def test_a_wrong_host_header_is_refused_even_with_the_cookie(page):
    assert page.client.get("/", headers={"host": "evil.example:8765"}).status_code == 421
    assert page.client.get("/", headers={"host": "localhost:8765"}).status_code == 200


def test_another_host_is_allowed_only_when_given():
    assert allowed_hosts("127.0.0.1", 9) == {"127.0.0.1:9", "localhost:9"}
    assert "10.0.0.5:9" in allowed_hosts("10.0.0.5", 9)


def test_every_answer_forbids_inline_script_framing_and_sniffing(page):
    headers = page.client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


def test_no_page_shows_the_token_or_the_cookie(page):
    html = page.upload().text + page.client.get("/").text
    assert page.session.token not in html and page.session.cookie not in html


# --- forms: CSRF and uploads ----------------------------------------------------------------


def test_a_post_without_the_csrf_token_does_nothing(page):
    files = {"sheet": (SAMPLE.name, SAMPLE.read_bytes(), "text/csv")}
    refused = page.client.post("/upload", data={}, files=files)
    assert refused.status_code == 403 and "expired" in refused.text
    wrong = page.client.post("/upload", data={"csrf": "guess"}, files=files)
    assert wrong.status_code == 403
    exported = page.client.post("/export", data={"scope": "all", "target": "sandbox"})
    assert exported.status_code == 403
    assert not page.reports.exists()


def test_stop_and_resume_need_the_csrf_token_too(page, monkeypatch):
    job = slow_run(page, monkeypatch)
    assert page.client.post(f"/jobs/{job}/stop", data={}).status_code == 403
    assert not page.client.app.state.jobs.get(job).work.watch.stopping.is_set()
    ended = stopped(page, job)
    assert page.client.post(f"/jobs/{job}/resume", data={}).status_code == 403
    folder = re.search(r"/runs/([\w-]+-results)", page.client.get("/").text)[1]
    assert page.client.post(f"/runs/{folder}/resume", data={}).status_code == 403
    assert counts(page.client.get(ended.url).text)["not_sent"] >= 1  # nothing was resumed


def test_a_post_from_another_site_is_refused(page):
    refused = page.client.post(
        "/upload", data={"csrf": page.session.csrf}, headers={"origin": "http://evil.example"}
    )
    assert refused.status_code == 403 and "another site" in refused.text


def test_an_oversized_upload_is_refused_and_not_kept(tmp_path, write_csv):
    small = Page(tmp_path / "reports", max_upload=1000).sign_in()
    big = write_csv([["Customer ID", "Subscription ID", "Quantity"]] + [["x", "y", "1"]] * 400)
    refused = small.upload(big)
    assert refused.status_code == 413 and "larger than" in refused.text
    assert not small.reports.exists()


def test_an_upload_is_kept_under_a_generated_name_and_shown_by_its_own(page):
    checked = page.upload(name="../../../etc/My sheet.csv")
    assert checked.status_code == 200 and "My sheet.csv" in checked.text
    (folder,) = page.reports.iterdir()
    assert folder.name.endswith("-My-sheet")
    kept = [p.name for p in folder.iterdir() if p.name.startswith("My")]
    assert len(kept) == 1 and re.fullmatch(r"My-sheet-[0-9a-f]{8}\.csv", kept[0]), kept


def test_only_csv_or_excel_is_taken(page, tmp_path):
    other = tmp_path / "notes.pdf"
    other.write_bytes(b"%PDF")
    refused = page.upload(other)
    assert refused.status_code == 400 and "CSV or Excel" in refused.text


# --- downloads --------------------------------------------------------------------------------


def test_only_files_a_known_run_wrote_can_be_downloaded(page):
    job = job_of(page.upload())
    good = page.client.get(f"/jobs/{job}/files/check/check.xlsx")
    assert good.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(good.content))
    assert book.sheetnames == ["Summary", "Subscriptions"]
    for bad in (
        f"/jobs/{job}/files/check/..%2F..%2Fpyproject.toml",
        f"/jobs/{job}/files/check/run.json",
        f"/jobs/{job}/files/check/{next(page.reports.glob('*/subscriptions-true-up-*.csv')).name}",
        f"/jobs/{job}/files/../../../etc/passwd",
        f"/jobs/{job}/files/results/results.csv",
        "/jobs/nosuchjob/files/check/check.csv",
    ):
        assert page.client.get(bad).status_code == 404, bad


# --- the flow ---------------------------------------------------------------------------------


def test_check_shows_the_mapping_the_counts_and_each_invalid_cell(page):
    checked = page.upload()
    assert counts(checked.text) == {"valid": 28, "invalid": 8, "no_change": 1}
    assert "Current seats" in checked.text and "expected" in checked.text
    assert "Check only: nothing was read from or sent to Partner Center" in checked.text
    invalid = page.client.get(f"{checked.url}?outcome=invalid")
    assert "8 rows; page 1 of 1" in invalid.text
    assert shown_rows(invalid.text) == 8
    assert 'class="bad"' in invalid.text and "is not a whole number" in invalid.text


def test_cells_are_shown_as_the_sheet_had_them_formula_text_too(page, write_csv):
    sheet = write_csv(
        [
            ["Customer ID", "Subscription ID", "Quantity", "Notes"],
            [
                "05e2378a-d57e-57ef-9870-17ffaf155ec0",
                "2ebfde47-3561-5913-91e8-fb08cb7e3cd1",
                "5",
                '"=HYPERLINK(""x"")"',
            ],
            [
                "05e2378a-d57e-57ef-9870-17ffaf155ec0",
                "1c7a8f1e-0c66-5a3c-9d55-1b9e77a4f6a2",
                "6",
                "'-5",
            ],
        ]
    )
    shown = page.upload(sheet).text
    cells = re.findall(r"<td title=\"[^\"]*\">([^<]*)</td>", shown.split('id="rows"')[1])
    assert "=HYPERLINK(&#34;x&#34;)" in cells  # no quote the user never typed
    assert "&#39;-5" in cells  # a quote the user typed stays


def test_rows_come_a_page_at_a_time(page, tmp_path):
    rows = SAMPLE.read_text().splitlines()
    many = tmp_path / "many.csv"
    many.write_text("\n".join([rows[0]] + [rows[1]] * 120) + "\n")
    checked = page.upload(many)
    assert "120 rows; page 1 of 3" in checked.text
    third = page.client.get(f"{checked.url}?page=3")
    assert "page 3 of 3" in third.text and shown_rows(third.text) == 20


def test_plan_confirm_and_run_against_the_sandbox(page):
    job = job_of(page.upload())
    plan = planned(page, job)
    assert plan.url.path == f"/jobs/{job}/plan"
    assert counts(plan.text)["change"] == 26
    assert sum(counts(plan.text).values()) == 37 and "37 rows; page 1 of 1" in plan.text
    assert "SANDBOX (built-in)" in plan.text and "banner-sandbox" in plan.text
    confirm = page.client.get(f"/jobs/{job}/confirm")
    assert "26 changes will be sent to" in confirm.text and 'id="typed"' not in confirm.text
    assert "nothing in Partner Center will change" in confirm.text
    done = sent(page, job)
    assert done.url.path == f"/jobs/{job}/results"
    assert counts(done.text)["ok"] == 26 and counts(done.text)["invalid"] == 8
    book = page.client.get(f"/jobs/{job}/files/results/results.xlsx")
    assert openpyxl.load_workbook(io.BytesIO(book.content))["Summary"] is not None
    listed = page.client.get("/").text
    states = dict(re.findall(r">([\w-]+)</a></td><td class=\"state-\w+\">(\w+)", listed))
    assert sorted(states.values()) == ["applied", "checked", "planned"]


def test_production_without_credentials_says_so_in_the_clis_words(page, monkeypatch):
    monkeypatch.delenv("BULKPATCH_TOKEN", raising=False)
    job = job_of(page.upload())
    refused = planned(page, job, "production")
    assert refused.status_code == 400 and "needs Partner Center credentials" in refused.text


def test_production_asks_for_the_number_of_changes_typed(page):
    job = job_of(page.upload())
    planned(page, job)
    plan = page.client.app.state.jobs.get(job).stages["plan"]
    plan.stamp.where = "production"  # what a plan read from production says of itself
    confirm = page.client.get(f"/jobs/{job}/confirm")
    assert 'id="typed"' in confirm.text
    refused = page.post(f"/jobs/{job}/apply", typed="25")
    assert refused.status_code == 400 and "Type 26 to send to production" in refused.text
    assert not any(p.name.endswith("-results") for p in page.reports.iterdir())


def test_a_run_needs_a_plan_first(page):
    job = job_of(page.upload())
    assert page.post(f"/jobs/{job}/apply").status_code == 409
    assert page.client.get(f"/jobs/{job}/results").url.path == f"/jobs/{job}/check"


def test_a_workbook_with_two_sheets_goes_through_sheet_by_sheet(page):
    checked = page.upload(SAMPLES / "month-end.xlsx")
    assert 'class="here">Subscriptions</a>' in checked.text and ">Orders</a>" in checked.text
    orders = page.client.get(f"{checked.url}?sheet=1")
    assert "Order ID" in orders.text.split('id="rows"')[1]
    job = job_of(checked)
    planned(page, job)
    done = sent(page, job)
    assert counts(done.text)["ok"] > 0 and counts(done.text)["failed"] == 0
    assert "undo.csv" in done.text


def test_the_command_says_when_its_port_is_taken(cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("ui", "--no-browser", "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_recent_run_folders_open_with_their_state_and_reports_only(page):
    job = job_of(page.upload())
    planned(page, job)
    start = page.client.get("/").text
    (plan,) = re.findall(r'href="/runs/([\w-]+-plan)"', start)
    shown = page.client.get(f"/runs/{plan}")
    assert '<b class="state-planned" id="state">planned</b>' in shown.text
    assert f'href="/runs/{plan}/files/plan.xlsx"' in shown.text
    plan_csv = page.client.get(f"/runs/{plan}/files/plan.csv").text
    assert plan_csv.lstrip("\ufeff").startswith("Customer,")
    upload = next(page.reports.glob("*/subscriptions-true-up-*.csv")).name
    for bad in (
        f"/runs/{plan}/files/run.json",
        f"/runs/{plan}/files/{upload}",
        f"/runs/{plan}/files/..%2F..%2Fpyproject.toml",
        "/runs/..%2F..%2Fetc/files/passwd",
        "/runs/nosuchrun",
    ):
        assert page.client.get(bad).status_code == 404, bad


def test_a_run_that_cannot_start_says_why_instead_of_spinning(page):
    import shutil

    job = job_of(page.upload())
    plan = planned(page, job)
    shutil.rmtree(re.search(r"<code>([^<]+-plan)</code>", plan.text).group(1))
    stopped = sent(page, job)
    assert stopped.status_code == 400 and "Not done" in stopped.text
    assert page.client.get(f"/jobs/{job}/results").url.path == f"/jobs/{job}/confirm"


def slow_run(page: Page, monkeypatch) -> str:
    """A job planned at full speed whose run then goes at 2 calls a second (a minute for the
    sample), so it is under way while the test looks at it."""
    job = job_of(page.upload())
    planned(page, job)
    monkeypatch.setenv("BULKPATCH_RATE", "120")
    assert page.post(f"/jobs/{job}/apply").url.path == f"/jobs/{job}/run"
    return job


def stopped(page: Page, job: str):
    """Press Stop once a change is done; the page the run ends on."""
    for _ in range(600):  # a bound, not a timing
        if page.client.app.state.jobs.get(job).work.shown()["done"]:
            break
        time.sleep(0.05)
    return followed(page, page.post(f"/jobs/{job}/stop"))


def test_one_run_goes_at_a_time_and_its_page_says_how_far_it_is(page, monkeypatch):
    job = slow_run(page, monkeypatch)
    shown = page.client.get(f"/jobs/{job}/results")  # not yet: the run's progress
    assert shown.url.path == f"/jobs/{job}/run" and 'id="stop"' in shown.text
    assert re.search(r"(\d+ of 26 changes done|Starting)", shown.text)
    assert '<meta http-equiv="refresh" content="1">' in shown.text  # without script
    assert page.post(f"/jobs/{job}/apply").status_code == 409
    assert page.post(f"/jobs/{job}/plan", target="sandbox").status_code == 409
    stopped(page, job)


def test_stop_means_ctrl_c_and_resume_sends_the_rest_once(page, monkeypatch):
    job = slow_run(page, monkeypatch)
    ended = stopped(page, job)
    assert ended.url.path == f"/jobs/{job}/results" and 'id="resume"' in ended.text
    first = counts(ended.text)
    assert first["ok"] >= 1 and first["not_sent"] >= 1 and first["ok"] + first["not_sent"] == 26
    assert "stopped from the page" in page.client.get(f"/jobs/{job}/files/results/results.csv").text
    monkeypatch.setenv("BULKPATCH_RATE", "6000")
    resumed = followed(page, page.post(f"/jobs/{job}/resume"))
    assert counts(resumed.text)["ok"] == 26 and 'id="resume"' not in resumed.text
    folders = [p.name for p in page.reports.iterdir() if p.name.endswith("-results")]
    assert len(folders) == 1  # the same folder, as `apply --resume`


def test_an_interrupted_folder_from_the_list_is_resumed_on_the_page(page, monkeypatch):
    job = slow_run(page, monkeypatch)
    stopped(page, job)
    (folder,) = [p.name for p in page.reports.iterdir() if p.name.endswith("-results")]
    listed = page.client.get(f"/runs/{folder}")
    assert 'id="state">interrupted' in listed.text and 'id="resume"' in listed.text
    monkeypatch.setenv("BULKPATCH_RATE", "6000")
    resumed = followed(page, page.post(f"/runs/{folder}/resume"))
    assert resumed.url.path.endswith("/results") and counts(resumed.text)["ok"] == 26
    assert 'id="state">applied' in page.client.get(f"/runs/{folder}").text


def test_a_sheet_the_check_cannot_use_gets_the_clis_one_line(page, write_csv):
    unusable = write_csv([["Customer ID", "Quantity"], ["x", "1"]])
    refused = page.upload(unusable)
    assert refused.status_code == 400 and "Subscription ID" in refused.text


def test_a_runs_progress_is_pushed_until_it_ends(page, monkeypatch):
    import json

    job = slow_run(page, monkeypatch)
    with page.client.stream("GET", f"/jobs/{job}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        first = json.loads(next(line for line in lines if line).removeprefix("data: "))
        assert first["total"] in (0, 26) and first["stopping"] is False
        assert {"done", "ok", "failed", "calls_per_minute", "eta", "outcomes"} <= set(first)
        page.post(f"/jobs/{job}/stop")
        rest = [line for line in lines if line]
    assert rest[-2:] == ["event: done", "data: {}"]  # then the page moves on to the results
    assert counts(page.client.get(f"/jobs/{job}/results").text)["not_sent"] >= 1


def test_the_plan_page_shows_seat_totals_and_what_needs_attention(page):
    job = job_of(page.upload())
    plan = planned(page, job).text
    seats = plan.split('id="seats"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>([^<]*)</td>((?:<td>-?\d+</td>){5})</tr>", seats)
    assert rows, seats
    # customers named as the sheet names them, the tenant id after
    assert "Contoso Ltd <small>05e2378a-d57e-57ef-9870-17ffaf155ec0</small>" in [r[0] for r in rows]
    figures = [[int(n) for n in re.findall(r"-?\d+", r[2])] for r in rows]
    assert all(after - before == added - removed for _, before, after, added, removed in figures)
    assert "8 invalid rows are left out" in plan


def test_the_page_says_who_is_signed_in_and_never_shows_the_token(page, monkeypatch):
    import base64
    import json

    monkeypatch.delenv("BULKPATCH_TOKEN", raising=False)
    assert "Not signed in" in page.client.get("/").text
    claims = {"upn": "ada@contoso.example", "tid": "5f1c7a52-0000-4000-8000-00000000c0de"}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    token = f"eyJhbGciOiJub25lIn0.{body}.signature"
    monkeypatch.setenv("BULKPATCH_TOKEN", token)
    shown = page.client.get("/").text
    who = re.search(r'id="who"[^>]*>([^<]+)<', shown).group(1)
    assert "ada@contoso.example" in who and claims["tid"] in who
    assert body not in shown and "signature" not in shown


def test_the_page_signs_in_with_the_profile_it_was_started_with(tmp_path, monkeypatch):
    tenant = "7d2c1b0a-0000-4000-8000-0000000000aa"
    (tmp_path / "bulkpatch.toml").write_text(
        f'[profiles.contoso]\nauth = "device_code"\ntenant_id = "{tenant}"\n'
        'client_id = "0f0e0d0c-0000-4000-8000-0000000000bb"\n'
    )
    monkeypatch.chdir(tmp_path)
    page = Page(tmp_path / "reports", profile="contoso").sign_in()
    who = re.search(r'id="who"[^>]*>([^<]+)<', page.client.get("/").text)[1]
    assert who == f"Not signed in (device_code, tenant {tenant})."


def test_export_from_the_start_page_gives_a_workbook_that_round_trips(page):
    start = page.client.get("/").text
    assert 'action="/export"' in start
    done = followed(page, page.post("/export", scope="all", kind="subscriptions", target="sandbox"))
    assert done.url.path.endswith("/export"), done.text
    rows = int(re.search(r'id="exported">(\d+) rows? from', done.text).group(1))
    link = re.search(r'id="download" href="([^"]+)"', done.text).group(1)
    book = page.client.get(link)
    sheet = openpyxl.load_workbook(io.BytesIO(book.content))["Subscriptions"]
    assert sheet.max_row - 1 == rows > 0
    saved = page.reports / "edited.xlsx"
    saved.write_bytes(book.content)
    checked = page.upload(saved, name="export.xlsx")
    assert checked.status_code == 200 and counts(checked.text).get("invalid", 0) == 0
    plan = planned(page, job_of(checked)).text
    assert counts(plan).get("change", 0) == 0  # an export applied as it is sends nothing


def test_an_export_needs_customers_when_it_is_not_every_customer(page):
    refused = page.post("/export", scope="listed", customers=" ", target="sandbox")
    assert refused.status_code == 400 and "type the customers&#39; tenant ids" in refused.text
    wrong = page.post("/export", scope="listed", customers="x" * 500, target="sandbox")
    assert wrong.status_code == 400 and "is not a tenant id" in wrong.text
    assert "x" * 39 + "…" in wrong.text and "x" * 41 not in wrong.text
    orders = page.post("/export", scope="all", kind="orders", renewing="30d", target="sandbox")
    assert orders.status_code == 400 and "the renewal window is for subscriptions" in orders.text
    assert not page.reports.exists() or not any(page.reports.iterdir())  # no folder left


def test_ctrl_c_stops_the_page_and_its_run_which_the_cli_then_resumes(cli, tmp_path):
    import json

    import httpx

    server, address = start_ui(tmp_path, calls_per_minute=240)
    try:
        with httpx.Client(follow_redirects=True, timeout=60) as browser:
            start = browser.get(address).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', start).group(1)
            base = address.split("/?")[0]
            files = {"sheet": (SAMPLE.name, SAMPLE.read_bytes(), "text/csv")}
            checked = browser.post(f"{base}/upload", data={"csrf": csrf}, files=files)
            job = job_of(checked)
            browser.post(f"{base}/jobs/{job}/plan", data={"csrf": csrf, "target": "sandbox"})
            for _ in range(1200):  # a bound, not a timing: until the plan is done
                if "/plan" in str(browser.get(f"{base}/jobs/{job}/run").url):
                    break
                time.sleep(0.05)
            browser.post(f"{base}/jobs/{job}/apply", data={"csrf": csrf})
        for _ in range(2400):  # until the run's folder has a change journaled as finished
            journals = list((tmp_path / "reports").glob("*-results/journal.jsonl"))
            if journals and '"event": "result"' in journals[0].read_text():
                break
            time.sleep(0.05)
        folder = journals[0].parent
    finally:
        interrupt(server)
        said = server.communicate(timeout=150)[0]
    assert server.returncode == 0, said
    assert f"Stopping the run in {folder}" in said and "bulkpatch ui stopped." in said
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["outcomes"]["ok"] < 26
    assert "not sent: interrupted (Ctrl-C on bulkpatch ui)" in (folder / "results.csv").read_text()
    resumed = cli("apply", "--resume", folder, "--json")
    assert resumed.returncode == 1  # the sample's invalid rows: nothing else failed
    assert json.loads(resumed.stdout)["outcomes"]["ok"] == 26


def test_a_run_the_library_left_interrupted_is_resumed_on_the_page(page):
    from bulkpatch.apply.session import Watch
    from bulkpatch.commands.apply import apply_file

    pressed = Watch()
    pressed.stop()  # Stop before the first answer: what Ctrl-C does to `bulkpatch apply`
    run = apply_file(SAMPLE, out=page.reports / "from-the-cli", progress=pressed)
    assert run.interrupted and run.counts()["not_sent"] >= 1
    listed = page.client.get("/runs/from-the-cli")
    assert 'id="state">interrupted' in listed.text
    resumed = followed(page, page.post("/runs/from-the-cli/resume"))
    assert counts(resumed.text)["ok"] == 26 and "SANDBOX (built-in)" in resumed.text


def test_resuming_a_production_run_asks_for_the_changes_left_typed(page):
    import json

    from bulkpatch.apply.session import Watch
    from bulkpatch.commands.apply import apply_file

    pressed = Watch()
    pressed.stop()
    run = apply_file(SAMPLE, out=page.reports / "live-run", progress=pressed)
    left = run.counts()["not_sent"]
    manifest = page.reports / "live-run" / "run.json"  # as a run against production says
    saved = json.loads(manifest.read_text())
    saved["settings"].update(target="production", embedded=False)
    manifest.write_text(json.dumps(saved))
    journal = (page.reports / "live-run" / "journal.jsonl").read_text()
    shown = page.client.get("/runs/live-run").text
    assert f"{left} left to send" in shown and 'id="typed"' in shown
    for typed in ("", str(left + 1)):
        refused = page.post("/runs/live-run/resume", typed=typed)
        assert refused.status_code == 400 and f"Type {left} to send" in refused.text
    assert (page.reports / "live-run" / "journal.jsonl").read_text() == journal  # nothing sent


def test_a_sheet_in_the_windows_encoding_is_shown_in_its_own_letters(page, quirk):
    shown = page.upload(quirk("cp1252.csv")).text
    assert "Café Zürich" in shown and "Müller – 5€" in shown
    assert "<th>Customer ID</th>" in shown  # no byte order mark read as letters


def test_a_sheet_the_check_cannot_read_is_named_as_uploaded_and_not_kept(page, quirk):
    refused = page.upload(quirk("not-a-sheet.pdf"), name="March seats.csv")
    assert refused.status_code == 400 and "March seats.csv" in refused.text
    assert "March-seats-" not in refused.text  # the name it was kept under is not the user's
    assert not page.reports.exists() or not any(page.reports.iterdir())


def test_a_header_only_sheet_says_there_is_nothing_to_do(page, quirk):
    shown = page.upload(quirk("header-only.csv")).text
    assert "has headers and no rows below them: nothing to do." in shown


def test_a_plan_is_sent_once_and_a_plan_with_nothing_to_send_offers_nothing(page, tmp_path):
    job = job_of(page.upload())
    planned(page, job)
    sent(page, job)
    again = page.client.get(f"/jobs/{job}/confirm").text
    assert 'id="nothing"' in again and "was sent already" in again and 'id="run"' not in again
    assert page.post(f"/jobs/{job}/apply").status_code == 409
    same = tmp_path / "again.csv"  # a row the run just applied: nothing left to change
    same.write_text("\n".join(SAMPLE.read_text().splitlines()[:2]) + "\n")
    quiet = job_of(page.upload(same))
    planned(page, quiet)
    nothing = page.client.get(f"/jobs/{quiet}/confirm").text
    assert "Nothing to send" in nothing and 'id="run"' not in nothing


def test_the_top_of_the_page_says_where_runs_go_in_the_present(page, monkeypatch):
    job = job_of(page.upload())
    plan = planned(page, job).text
    banner = re.search(r'id="target">([^<]+)<', plan)[1]
    assert banner == "SANDBOX (built-in): nothing in Partner Center changes"
    job = slow_run(page, monkeypatch)
    stopped(page, job)
    (folder,) = [p.name for p in page.reports.iterdir() if p.name.endswith("-results")]
    monkeypatch.setenv("BULKPATCH_RATE", "120")
    running = page.post(f"/runs/{folder}/resume")  # its progress page, from the folder's files
    assert re.search(r'id="target">SANDBOX \(built-in\)', running.text)
    assert "Sending: subscriptions-true-up.csv" in running.text  # the name as uploaded
    followed(page, page.post(f"/jobs/{job_of(running)}/stop"))


# --- what a request may send, and one run of a sheet at a time --------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [True, False], ids=["with its size", "chunked, no size"])
async def test_a_60_mb_upload_is_refused_before_it_is_read_whole(tmp_path, declared):
    """The upload streamed a megabyte at a time into the page's application (httpx's ASGI
    transport hands it over as it is read): the page stops reading at its limit."""
    import httpx

    from bulkpatch.ui.guard import COOKIE

    page = Page(tmp_path / "reports")
    boundary = "bulkpatch-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
        f"{page.session.csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; "
        'name="sheet"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    megabyte = (b"Customer ID,Subscription ID,Quantity\n" * 30_000)[: 2**20]
    read = 0  # megabytes the page took

    async def body():
        nonlocal read
        yield head
        for _ in range(60):
            read += 1
            yield megabyte
        yield tail

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    if declared:
        headers["content-length"] = str(len(head) + 60 * 2**20 + len(tail))
    transport = httpx.ASGITransport(app=page.client.app)
    cookies = {COOKIE: page.session.cookie}
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{HOST}", cookies=cookies
    ) as client:
        answer = await client.post("/upload", content=body(), headers=headers)
    assert answer.status_code == 413
    assert "The sheet is larger than 50 MB: split it." in answer.text
    assert read == 0 if declared else 50 <= read < 60  # a declared size: nothing read at all
    assert not page.reports.exists()  # nothing kept


def test_two_runs_of_one_sheet_at_once_one_runs_the_other_says_why(page, monkeypatch):
    import html

    first, second = job_of(page.upload()), job_of(page.upload())  # the same sheet, twice
    planned(page, first)
    planned(page, second)
    monkeypatch.setenv("BULKPATCH_RATE", "120")  # the first run is under way a while
    assert page.post(f"/jobs/{first}/apply").url.path == f"/jobs/{first}/run"
    running = page.client.app.state.jobs.get(first).work
    for _ in range(600):  # a bound, not a timing: until it has sent a change
        if running.shown()["done"]:
            break
        time.sleep(0.05)
    refused = followed(page, page.post(f"/jobs/{second}/apply"))
    assert refused.status_code == 400
    said = html.unescape(re.search(r'id="message">([^<]*)<', refused.text)[1])
    assert said == (
        f"{SAMPLE.name}: the run in {running.folder.resolve()} (process {os.getpid()}) is "
        "sending this sheet's changes now; nothing was sent. Wait for it to finish and read its "
        "results: send again only what they leave to do."
    )
    ended = stopped(page, first)  # the first runs on, as if the second had not asked
    assert counts(ended.text)["ok"] >= 1
    assert [p for p in page.reports.iterdir() if p.name.endswith("-results")] == [running.folder]


# --- matching: customers and offers by name (issue 23) ------------------------------------------


def matched_by(html: str) -> dict[str, int]:
    """The Plan page's table of rows by how they were matched."""
    table = html.split('id="matched-by"')[1].split("</table>")[0]
    return {by: int(n) for by, n in re.findall(r"<td>([^<]+)</td><td>(\d+)</td>", table)}


def choices(html: str) -> dict[int, str]:
    """The Plan page's rows that need a choice, by sheet row: each row's HTML."""
    table = html.split('id="choices"')[1].split("</tbody></table>\n\n</section>")[0]
    rows = table.split('<tr class="choice">')[1:]
    return {int(re.match(r"<td>(\d+)</td>", r).group(1)): r for r in rows}


def test_the_plan_page_shows_how_rows_were_matched_and_their_candidates(page, tmp_path, write_xlsx):
    sheet = as_workbook(write_xlsx, NAMES_ONLY)
    job = job_of(page.upload(sheet))
    plan = planned(page, job).text
    # The same sheet planned by the library alone: what `--json`'s `matching` carries.
    alone = plan_file(sheet, out=tmp_path / "alone", reports_base=tmp_path / "cli-reports")
    matching = alone.summary()["sheets"][0]["matching"]
    ways = Counter(
        "not matched"
        if m["code"]
        else f"{m['customer_by'] or 'id'} + {m['subscription_by'] or 'id'}"
        for m in matching
    )
    assert matched_by(plan) == dict(ways) and ways["not matched"] == 4
    stopped = {m["row"]: m for m in matching if m["code"]}
    shown = choices(plan)
    assert sorted(shown) == sorted(stopped) == [8, 9, 10, 11]
    for row, m in stopped.items():
        assert m["code"] in shown[row] and html.escape(m["asked"]) in shown[row]
        for c in m["candidates"] + m["closest"]:
            assert f"<td>{c['id']}</td>" in shown[row], (row, c)
        for c in m["candidates"] if m["code"] == "match.subscriptions_alike" else []:
            assert f"<td>{c['seats']}</td><td>{c['term']}</td><td>{c['ends']}</td>" in shown[row]
        assert f"<td>{m['tell'] or ''}</td></tr>" in shown[row]
    # the look-alike customers: both tenant ids are candidates, the Domain tells them apart
    assert LOOKALIKE_ID in shown[8] and "Contoso Ltd.</td>" in shown[8]
    assert len(stopped[8]["candidates"]) == 2 and shown[8].endswith("<td>Domain</td></tr>\n")
    assert "Closest, not used" in shown[10] and "Northwind Traders</td>" in shown[10]

    link = re.search(r'id="matched-file" class="button" href="([^"]+)"', plan).group(1)
    assert link == f"/jobs/{job}/files/plan/matched.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(page.client.get(link).content))
    rows = book["Subscriptions"].iter_rows(values_only=True)
    header = next(rows)
    at = {h: header.index(h) for h in ("Customer ID", "Subscription ID", "Matched by")}
    cells = [{h: r[i] for h, i in at.items()} for r in rows]
    assert Counter(c["Matched by"] for c in cells) == ways  # the file says what the page does
    ids = {m["row"]: (m["customer_id"], m["subscription_id"]) for m in matching}
    for row, c in enumerate(cells, start=2):
        if c["Matched by"] != "not matched":
            assert (c["Customer ID"], c["Subscription ID"]) == ids[row]
            assert re.fullmatch(r"[0-9a-f-]{36}", c["Subscription ID"]), c
        else:
            assert c["Subscription ID"] is None


def test_a_sheet_with_ids_shows_no_matching(page):
    job = job_of(page.upload())  # every row names its Customer ID and Subscription ID
    plan = planned(page, job).text
    assert counts(plan)["change"] == 26
    assert 'id="matching"' not in plan and "matched." not in plan


def test_the_matched_sheet_is_offered_after_the_run_and_from_its_folder(page):
    job = job_of(page.upload(NAMES_ONLY))  # a CSV: its matched sheet is a CSV too
    plan = planned(page, job).text
    assert f'href="/jobs/{job}/files/plan/matched.csv"' in plan
    done = sent(page, job)
    assert counts(done.text)["ok"] == 6 and counts(done.text)["invalid"] == 4
    link = f"/jobs/{job}/files/results/matched.csv"
    assert f'id="matched-file" class="button" href="{link}"' in done.text
    matched = page.client.get(link).text.lstrip("\ufeff").splitlines()
    assert matched[0].endswith("Customer ID,Subscription ID,Matched by")
    assert sum(line.endswith(",not matched") for line in matched) == 4
    (folder,) = re.findall(r'href="/runs/([\w-]+-results)"', page.client.get("/").text)
    listed = page.client.get(f"/runs/{folder}").text
    assert f'href="/runs/{folder}/files/matched.csv"' in listed
    assert page.client.get(f"/runs/{folder}/files/matched.csv").text == page.client.get(link).text


def test_rows_that_need_a_choice_come_a_page_at_a_time(page, tmp_path):
    rows = NAMES_ONLY.read_text(encoding="utf-8").splitlines()
    stops = next(r for r in rows if r.startswith("Northwind Trading,"))  # no such customer
    many = tmp_path / "many-names.csv"
    many.write_text("\n".join([rows[0], rows[1]] + [stops] * 120) + "\n", encoding="utf-8")
    job = job_of(page.upload(many))
    plan = planned(page, job)
    assert matched_by(plan.text) == {"name and domain + offer": 1, "not matched": 120}
    assert "Rows that need a choice or a correction (120)" in plan.text
    assert "page 1 of 3" in plan.text and len(choices(plan.text)) == 50
    last = page.client.get(f"/jobs/{job}/plan?choices=3").text
    assert "page 3 of 3" in last and sorted(choices(last)) == list(range(103, 123))


def test_a_workbook_of_two_sheets_says_which_sheet_needs_a_choice(page, write_xlsx):
    with NAMES_ONLY.open(encoding="utf-8", newline="") as f:
        names = [[int(v) if v.isdigit() else (v or None) for v in row] for row in csv.reader(f)]
    orders = list(openpyxl.load_workbook(SAMPLES / "month-end.xlsx")["Orders"].values)
    book = write_xlsx({"Subscriptions": names, "Orders": [list(r) for r in orders]}, "two.xlsx")
    job = job_of(page.upload(book))
    plan = planned(page, job).text
    assert "Rows that need a choice or a correction (4), sheet Subscriptions</h3>" in plan
