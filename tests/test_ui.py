"""The web page's routes with Starlette's test client: what keeps it private, and the flow
check -> plan -> confirm -> results over the command layer, against the built-in sandbox."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLES
from starlette.testclient import TestClient

from bulkpatch.errors import BulkpatchError
from bulkpatch.ui.app import make_app
from bulkpatch.ui.guard import Session
from bulkpatch.ui.server import allowed_hosts

SAMPLE = SAMPLES / "subscriptions-true-up.csv"
HOST = "127.0.0.1:8765"


class Page:
    """A signed-in browser session on a page whose runs go to `reports`."""

    def __init__(self, reports: Path, max_upload: int = 50 * 1024 * 1024) -> None:
        self.reports = reports
        self.session = Session(hosts=allowed_hosts("127.0.0.1", 8765))
        self.client = TestClient(
            make_app(self.session, reports, max_upload), base_url=f"http://{HOST}"
        )

    def sign_in(self) -> Page:
        assert self.client.get(f"/?token={self.session.token}").status_code == 200
        return self

    def upload(self, path: Path = SAMPLE, name: str | None = None, **form: str):
        data = {"csrf": self.session.csrf, **form}
        files = {"sheet": (name or path.name, path.read_bytes(), "text/csv")}
        return self.client.post("/upload", data=data, files=files)

    def post(self, url: str, **form: str):
        return self.client.post(url, data={"csrf": self.session.csrf, **form})


@pytest.fixture
def page(tmp_path: Path) -> Page:
    return Page(tmp_path / "reports").sign_in()


def counts(html: str) -> dict[str, int]:
    return {k: int(n) for n, k in re.findall(r'<li class="outcome-\w+"><b>(\d+)</b> (\w+)', html)}


def shown_rows(html: str) -> int:
    """Rows in the page's table of sheet rows (its header row left out)."""
    return html.split('id="rows"')[1].count("<tr>") - 1


def sent(page: Page, job: str):
    """Send the job's plan, follow the progress page until the run ends: its last page."""
    shown = page.post(f"/jobs/{job}/apply")
    for _ in range(1200):  # a bound, not a timing: the run ends long before
        if 'id="progress"' not in shown.text:
            return shown
        assert "changes done" in shown.text
        time.sleep(0.05)
        shown = page.client.get(f"/jobs/{job}/run")
    raise AssertionError("the run did not end")


def job_of(response) -> str:
    return re.search(r"/jobs/([\w-]+)/", str(response.url)).group(1)


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
    assert not page.reports.exists()


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
    assert [p.name for p in folder.glob("upload-*.csv")] != []
    assert not list(folder.glob("My*"))


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
        f"/jobs/{job}/files/check/{next(page.reports.glob('*/upload-*')).name}",
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
    planned = page.post(f"/jobs/{job}/plan", target="sandbox")
    assert planned.url.path == f"/jobs/{job}/plan"
    assert counts(planned.text)["change"] == 26
    assert "SANDBOX (built-in)" in planned.text and "banner-sandbox" in planned.text
    confirm = page.client.get(f"/jobs/{job}/confirm")
    assert "26 changes will be sent to" in confirm.text and 'id="typed"' not in confirm.text
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
    refused = page.post(f"/jobs/{job}/plan", target="production")
    assert refused.status_code == 400 and "needs Partner Center credentials" in refused.text


def test_production_asks_for_the_number_of_changes_typed(page):
    job = job_of(page.upload())
    page.post(f"/jobs/{job}/plan", target="sandbox")
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
    page.post(f"/jobs/{job}/plan", target="sandbox")
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
    page.post(f"/jobs/{job}/plan", target="sandbox")
    start = page.client.get("/").text
    (planned,) = re.findall(r'href="/runs/([\w-]+-plan)"', start)
    shown = page.client.get(f"/runs/{planned}")
    assert '<b class="state-planned" id="state">planned</b>' in shown.text
    assert f'href="/runs/{planned}/files/plan.xlsx"' in shown.text
    plan_csv = page.client.get(f"/runs/{planned}/files/plan.csv").text
    assert plan_csv.lstrip("\ufeff").startswith("Customer,")
    upload = next(page.reports.glob("*/upload-*")).name
    for bad in (
        f"/runs/{planned}/files/run.json",
        f"/runs/{planned}/files/{upload}",
        f"/runs/{planned}/files/..%2F..%2Fpyproject.toml",
        "/runs/..%2F..%2Fetc/files/passwd",
        "/runs/nosuchrun",
    ):
        assert page.client.get(bad).status_code == 404, bad


def test_a_run_that_cannot_start_says_why_instead_of_spinning(page):
    import shutil

    job = job_of(page.upload())
    planned = page.post(f"/jobs/{job}/plan", target="sandbox")
    shutil.rmtree(re.search(r"<code>([^<]+-plan)</code>", planned.text).group(1))
    stopped = sent(page, job)
    assert stopped.status_code == 400 and "Not done" in stopped.text
    assert page.client.get(f"/jobs/{job}/results").url.path == f"/jobs/{job}/confirm"


def test_the_progress_page_follows_a_run_and_one_run_goes_at_a_time(page):
    import threading

    job_id = job_of(page.upload())
    page.post(f"/jobs/{job_id}/plan", target="sandbox")
    job = page.client.app.state.jobs.get(job_id)
    release, finished = threading.Event(), threading.Event()

    def held_run(**options):  # an apply that waits to be let go
        release.wait(60)
        finished.set()
        raise BulkpatchError("stopped on purpose")

    assert job.send(held_run)
    shown = page.client.get(f"/jobs/{job_id}/results")  # not yet: the run's progress
    assert shown.url.path == f"/jobs/{job_id}/run" and "0 of 26 changes done" in shown.text
    assert '<meta http-equiv="refresh" content="1">' in shown.text
    assert page.post(f"/jobs/{job_id}/apply").status_code == 409
    assert page.post(f"/jobs/{job_id}/plan", target="sandbox").status_code == 409
    release.set()
    finished.wait(60)
    stopped = sent_page(page, job_id)
    assert "stopped on purpose" in stopped.text


def sent_page(page: Page, job: str):
    """The run page once the run in the background has let go of the sheet."""
    for _ in range(6000):  # a bound, not a timing
        if not page.client.app.state.jobs.get(job).running:
            return page.client.get(f"/jobs/{job}/run")
        time.sleep(0.01)
    raise AssertionError("the run did not let go")


def test_a_sheet_the_check_cannot_use_gets_the_clis_one_line(page, write_csv):
    unusable = write_csv([["Customer ID", "Quantity"], ["x", "1"]])
    refused = page.upload(unusable)
    assert refused.status_code == 400 and "Subscription ID" in refused.text


def test_a_runs_progress_is_pushed_until_it_ends(page):
    import json
    import threading

    job_id = job_of(page.upload())
    page.post(f"/jobs/{job_id}/plan", target="sandbox")
    job = page.client.app.state.jobs.get(job_id)
    release = threading.Event()

    def held_run(**options):  # an apply that ends once its progress has been pushed
        release.wait(60)
        raise BulkpatchError("stopped on purpose")

    read = job.progress

    def read_then_let_go() -> dict:
        shown = read()
        release.set()
        return shown

    job.progress = read_then_let_go
    assert job.send(held_run)
    with page.client.stream("GET", f"/jobs/{job_id}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in events.iter_lines() if line]
    assert json.loads(lines[0].removeprefix("data: ")) == {"done": 0, "outcomes": {}}
    assert lines[-2:] == ["event: done", "data: {}"]
