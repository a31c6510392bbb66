"""Shared fixtures: the quirk files, real workbooks written with xlsxwriter, the real CLI."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import xlsxwriter
from starlette.testclient import TestClient

from bulkpatch.apply.engine import Engine
from bulkpatch.plan.changes import Change
from bulkpatch.runs.journal import Journal
from bulkpatch.sandbox import Sandbox, SandboxConfig, SeedSpec, resources
from bulkpatch.settings import Settings
from bulkpatch.ui.app import make_app
from bulkpatch.ui.guard import Session
from bulkpatch.ui.server import allowed_hosts

QUIRKS = Path(__file__).parent / "quirks"
# Every field of the two reference request bodies, written by hand from Microsoft's pages.
REFERENCE_FIELDS = Path(__file__).parent / "fixtures" / "reference_fields.txt"
NOW = datetime.now(UTC)
ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "samples"
SAMPLE = SAMPLES / "subscriptions-true-up.csv"  # the sample a page test uploads by default
CUSTOMER = "0f1b2c3d-1111-4222-8333-444455556666"
SUB1 = "a1b2c3d4-0000-4000-8000-000000000001"
SUB2 = "a1b2c3d4-0000-4000-8000-000000000002"

Cell = str | float | bool | datetime | None
NEXT_TERM_PRODUCT = {
    "productId": "CFQ7TTC0LCHC",
    "skuId": "0002",
    "availabilityId": "CFQ7TTC0K5DJ",
    "billingCycle": "monthly",
    "termDuration": "P1Y",
}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> None:
    """Each test has its own user cache folder (tokens, the ledger of applied seat changes)
    and data folder (the audit logs), and runs in its own folder: a run folder written under
    the default `reports/` lands there, never in the checkout."""
    monkeypatch.setenv("BULKPATCH_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("BULKPATCH_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium is marked `browser`, so the quick loop can leave it out."""
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True, scope="session")
def checkout_untouched():
    """The suite leaves the checkout's `reports/` as it found it."""
    before = sorted(p.name for p in (ROOT / "reports").iterdir())
    yield
    assert sorted(p.name for p in (ROOT / "reports").iterdir()) == before


@pytest.fixture
def quirk() -> Callable[[str], Path]:
    """Path of a small input file named for the defect it shows."""
    return lambda name: QUIRKS / name


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (header first) as a UTF-8 CSV in a temporary folder."""

    def make(rows: list[list[str]], name: str = "sheet.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
        return path

    return make


@pytest.fixture
def write_xlsx(tmp_path: Path) -> Callable[..., Path]:
    """Write a real workbook: {sheet name: rows}, cells typed as Excel would store them."""

    def make(sheets: dict[str, list[list[Cell]]], name: str = "book.xlsx") -> Path:
        path = tmp_path / name
        book = xlsxwriter.Workbook(str(path))
        date = book.add_format({"num_format": "yyyy-mm-dd"})
        for title, rows in sheets.items():
            ws = book.add_worksheet(title)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if isinstance(value, bool):
                        ws.write_boolean(r, c, value)
                    elif isinstance(value, datetime):
                        ws.write_datetime(r, c, value, date)
                    elif isinstance(value, float | int):
                        ws.write_number(r, c, value)
                    elif value is not None:
                        ws.write_string(r, c, value)
        book.close()
        return path

    return make


NAMES_ONLY = SAMPLES / "true-up-by-name.csv"  # customers and offers by name (README, "Matching")


def as_workbook(write_xlsx: Callable[..., Path], sheet: Path) -> Path:
    """The CSV `sheet` as a real workbook of one `Subscriptions` sheet, whole numbers stored as
    numbers as Excel keeps them (a workbook's run writes `matched.xlsx`, a CSV's `matched.csv`)."""
    with sheet.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    cells = [[int(v) if v.isdigit() else (v or None) for v in row] for row in rows]
    return write_xlsx({"Subscriptions": cells}, f"{sheet.stem}.xlsx")


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `python -m bulkpatch` in a temporary working folder."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
        return subprocess.run(
            [sys.executable, "-m", "bulkpatch", *map(str, args)],
            cwd=cwd or tmp_path,
            capture_output=True,
            encoding="utf-8",  # as PYTHONIOENCODING makes it write, whatever this OS's locale
            timeout=120,
            env=env,
        )

    return run


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bulkpatch's wheel, built once per test session from a copy of the checkout (a build
    writes `build/` where it builds, never here) and offline: the build backend is the test
    environment's own setuptools (the `test` extra), not one fetched for the build."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__")
    for folder in ("bulkpatch", "samples"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", source, *offline, "-q", "-w", out],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    return next(out.glob("bulkpatch-*.whl"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Running:
    """A sandbox reachable through `client`, in-process or over real HTTP."""

    def __init__(self, sandbox, client, url: str) -> None:
        self.sandbox, self.client, self.url = sandbox, client, url

    async def stats(self) -> dict:
        return (await self.client.get("/_sandbox/stats")).json()


@contextlib.asynccontextmanager
async def _serve(mode: str, config, token: str):
    from bulkpatch.sandbox import Sandbox, SandboxTransport

    sandbox = Sandbox(config)
    headers = {"Authorization": f"Bearer {token}"}
    if mode == "in-process":
        transport = SandboxTransport(sandbox.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield Running(sandbox, client, "http://127.0.0.1")
        return
    with uvicorn_server(sandbox.app) as url:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
            yield Running(sandbox, client, url)


@contextlib.contextmanager
def uvicorn_server(app, **tls):
    """Serve `app` with a real uvicorn on 127.0.0.1 (a free port) in a background thread.

    `ssl_certfile`/`ssl_keyfile` serve it over https instead of http.
    """
    import threading
    import time

    import uvicorn

    from bulkpatch.portable import listening_socket

    sock = listening_socket("127.0.0.1", 0, backlog=128)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="critical", timeout_graceful_shutdown=1, **tls)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        scheme = "https" if tls else "http"
        yield f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(params=["in-process", "uvicorn"])
def serve_sandbox(request):
    """Start a sandbox (in-process, then as a real server) from a SandboxConfig."""

    def start(config=None, token: str = "test-token"):
        from bulkpatch.sandbox import SandboxConfig

        return _serve(request.param, config or SandboxConfig(), token)

    return start


# --- apply-shaped helpers shared by the engine, plan, undo, resume and sign-in tests ---

FAST = Settings(rate=60_000, concurrency=8, backoff=0.01)


HEAD = ["Customer ID", "Subscription ID", "Quantity", "Auto renew", "Friendly name", "Status"]


def ids(n: int, salt: str) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}-{i}")) for i in range(n)]


def true_up(tmp_path: Path, customers: int = 3, per: int = 4, name: str = "true-up.csv") -> Path:
    """A sheet of changes: seats, auto-renew, renames and suspensions over a few customers."""
    rows = [HEAD]
    for c, customer in enumerate(ids(customers, "customer")):
        for s, sub in enumerate(ids(per, f"sub-{c}")):
            kind = (c * per + s) % 4
            rows.append(
                [
                    customer,
                    sub,
                    str(10 + s) if kind in (0, 3) else "",
                    "no" if kind == 1 else "",
                    f"Renamed {s}" if kind == 2 else "",
                    "suspended" if kind == 3 and s == 3 else "",
                ]
            )
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


@contextmanager
def server(sheet: Path, **config):
    """A real uvicorn sandbox on 127.0.0.1 seeded from `sheet`."""
    sandbox = Sandbox(SandboxConfig(seed=SeedSpec(sheets=[sheet]), **config))
    with uvicorn_server(sandbox.app) as url:
        yield url, sandbox


def stats(url: str) -> dict:
    return httpx.get(f"{url}/_sandbox/stats", timeout=10).json()


def current(url: str, customer: str, sub: str) -> dict:
    return httpx.get(
        f"{url}/v1/customers/{customer}/subscriptions/{sub}",
        timeout=10,
        headers={"Authorization": "Bearer t"},
    ).json()


def results(folder: Path, name: str = "results.csv") -> pl.DataFrame:
    return pl.read_csv(folder / name, infer_schema=False)


def journal_calls(folder: Path) -> list[dict]:
    lines = (folder / "journal.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "call"]


# --- a real Chromium for the web page's tests ---

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _installed_chromium() -> str | None:
    """The OS package's Chromium, or the one `playwright install chromium` downloaded."""
    found = next((p for p in CHROMIUM_PATHS if Path(p).is_file()), None)
    if found:
        return found
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        own = p.chromium.executable_path
    return own if Path(own).is_file() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    """A Chromium's path; on a fresh Debian machine run as root, installed from the OS
    packages once (Playwright's own download host may be out of reach). Never a skip: a
    browser test without a browser fails with what to do."""
    return os_tool(
        _installed_chromium, "chromium", "Chromium", "or run `playwright install chromium`"
    )


@pytest.fixture(scope="session")
def libreoffice() -> str:
    """LibreOffice's `soffice`, to render a workbook as it prints (with poppler's pdftotext to
    read the pages back); installed from the OS packages once, like Chromium."""
    return os_tool(
        lambda: shutil.which("soffice") if shutil.which("pdftotext") else None,
        "libreoffice-calc-nogui poppler-utils",
        "LibreOffice",
        "or install LibreOffice and poppler-utils",
    )


def os_tool(found: Callable[[], str | None], packages: str, what: str, otherwise: str) -> str:
    """A tool from `found`, else installed with apt-get on Debian as root (once, within 15
    minutes); else a failure that says what to do. Never a skip."""
    path = found()
    if path:
        return path
    install = f"apt-get update && apt-get install -y {packages}"
    if os.name == "posix" and os.geteuid() == 0 and Path("/etc/debian_version").is_file():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            done = subprocess.run(
                ["sh", "-c", install], capture_output=True, text=True, timeout=900, env=env
            )
        except subprocess.TimeoutExpired:
            done = None
        path = found()
        if path:
            return path
        why = done.stderr.strip().splitlines()[-1:] if done else ["it took over 15 minutes"]
        pytest.fail(f"`{install}` did not install {what}: {' '.join(why)}")
    pytest.fail(f"no {what} found for these tests: `{install}` ({otherwise}), then run again.")


# --- what differs between POSIX and Windows for the tests themselves ---

# Ctrl-C as another process sends it: SIGINT on POSIX. Windows has no SIGINT to send: a console's
# Ctrl-Break reaches a process started in a process group of its own, and bulkpatch takes it as
# Ctrl-C (bulkpatch.portable). Start with `**OWN_GROUP`, stop with `interrupt`.
OWN_GROUP: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {}


def interrupt(process: subprocess.Popen) -> None:
    """Press Ctrl-C in `process` (started with `**OWN_GROUP`)."""
    process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT)


# What only POSIX has: a pseudo-terminal (`pty`) and a file-size limit (`resource`). The few
# tests that need one run everywhere else and are reported skipped on Windows, with this reason.
posix_only = pytest.mark.skipif(
    os.name == "nt", reason="needs a POSIX pseudo-terminal or file-size limit; Windows has none"
)


def start_ui(cwd: Path, calls_per_minute: int) -> tuple[subprocess.Popen[str], str]:
    """The real `bulkpatch ui --no-browser`, its runs paced at `calls_per_minute`, writing
    under `cwd`; the process (stop it with `interrupt`) and the address it printed (with its
    one-time token)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "BULKPATCH_RATE": str(calls_per_minute)}
    return started_ui([sys.executable, "-m", "bulkpatch"], cwd, env)


def started_ui(
    bulkpatch: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    """`bulkpatch ui --no-browser` run as `bulkpatch` (a command line) in `cwd`; the process
    and the address it printed (within a minute, or the process is ended)."""
    import threading

    process = subprocess.Popen(
        [*bulkpatch, "ui", "--no-browser"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",  # PYTHONIOENCODING in `env`
        env=env,
        **OWN_GROUP,
    )
    watchdog = threading.Timer(60, process.kill)  # a bound on the wait, not a timing
    watchdog.start()
    first = process.stdout.readline()
    watchdog.cancel()
    found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", first)
    if found is None:
        process.kill()
        pytest.fail(f"bulkpatch ui printed no address: {first}{process.communicate()[0]}")
    return process, found.group(0)


# --- resources placed in a sandbox, and a live-looking profile -------------------------------


def put_subscription(run, *, legacy: bool = False, **state) -> tuple[str, dict]:
    """Place a subscription with a known state in the sandbox; return its URL and body.

    It has 10 seats unless `state` says otherwise, so a test's seat change always changes them.
    """
    state.setdefault("quantity", 10)
    customer, sid = str(uuid.uuid4()), str(uuid.uuid4())
    body = resources.subscription(customer, sid, NOW, legacy=legacy, **state)
    if legacy:
        body.pop("refundableQuantity", None)
        body.pop("refundOptions", None)
        body["attributes"]["etag"] = "etag-1"
    else:
        body["attributes"].pop("etag", None)
        q = body["quantity"]
        body["refundableQuantity"] = {
            "totalQuantity": 2,
            "details": [
                {"quantity": 2, "allowedUntilDateTime": resources.iso(NOW + timedelta(days=3))}
            ],
        }
        body["quantity"] = q
    run.sandbox.store.put_many("subscriptions", [(customer, body)])
    return f"/v1/customers/{customer}/subscriptions/{sid}", body


def put_order(run, days_old: int = 5, **state) -> tuple[str, dict]:
    """Place an order of software (the kind an order PATCH can cancel) with two lines."""
    customer, oid = str(uuid.uuid4()), f"ORD-{uuid.uuid4().hex[:8]}"
    state.setdefault("software", True)
    body = resources.order(customer, oid, NOW, [{"quantity": 3}, {"quantity": 5}], **state)
    body["creationDate"] = resources.iso(NOW - timedelta(days=days_old))
    run.sandbox.store.put_many("orders", [(customer, body)])
    return f"/v1/customers/{customer}/orders/{oid}", body


def live_profile(folder: Path, url: str) -> None:
    """A profile whose production endpoint is a local sandbox: bulkpatch treats it as live."""
    (folder / "bulkpatch.toml").write_text(f'[profiles.default]\napi_url = "{url}"\n')


def run_in_terminal(args: list[str], cwd: Path, answer: str) -> tuple[int, str]:
    """Run the CLI with a real pseudo-terminal as stdin/stderr and answer its question."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkpatch", *args],
        cwd=cwd,
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "BULKPATCH_TOKEN": "any"},
    )
    os.close(follower)
    screen, deadline = b"", time.monotonic() + 60
    while b"Send these changes?" not in screen and time.monotonic() < deadline:
        screen += os.read(leader, 4096)
    os.write(leader, answer.encode() + b"\n")
    process.wait(60)
    try:
        while chunk := os.read(leader, 4096):
            screen += chunk
    except OSError:
        pass
    os.close(leader)
    return process.returncode, screen.decode(errors="replace")


def in_terminal(args: list[str], cwd: Path) -> str:
    """What the CLI writes to stderr when stderr is a terminal (a real pseudo-terminal)."""
    import fcntl
    import pty
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkpatch", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    with contextlib.suppress(OSError):  # the terminal closes when the process ends
        while chunk := os.read(leader, 4096):
            screen += chunk
    process.wait(60)
    os.close(leader)
    return screen.decode(errors="replace")


# --- changes made by hand, and the engine run on them ----------------------------------------

ENGINE = Settings(rate=60_000, concurrency=4, backoff=0.001, poll_timeout=10)


def sub_change(path: str, values: dict, name: str = "row") -> Change:
    _, _, _, customer, _, sid = path.split("/")
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}:{path}"))
    return Change("subscriptions", customer, sid, [2], values, request_id=request_id)


def order_change(path: str, values: dict, lines: list[dict], name: str = "row") -> Change:
    _, _, _, customer, _, oid = path.split("/")
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}:{path}"))
    return Change("orders", customer, oid, [2], values, lines, request_id=request_id)


async def apply(client, changes: list[Change], folder: Path, **settings) -> tuple[dict, Engine]:
    """Run the engine itself over `changes`, journaled in `folder` (`settings` over `ENGINE`)."""
    folder.mkdir(parents=True, exist_ok=True)
    journal = Journal(folder / "journal.jsonl")
    engine = Engine(client, replace(ENGINE, **settings), journal)
    done = await engine.run(changes)
    journal.close()
    return done, engine


# --- the page, signed in, through Starlette's test client --------------------------------------

HOST = "127.0.0.1:8765"


class Page:
    """A signed-in browser session on a page whose runs go to `reports`."""

    def __init__(
        self, reports: Path, max_upload: int = 50 * 1024 * 1024, profile: str | None = None
    ) -> None:
        self.reports = reports
        self.session = Session(hosts=allowed_hosts("127.0.0.1", 8765))
        self.client = TestClient(
            make_app(self.session, reports, max_upload, profile), base_url=f"http://{HOST}"
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


def followed(page: Page, shown):
    """Follow a progress page (a plan, a run, an export) until its work ends: the page it
    ends on."""
    for _ in range(2400):  # a bound, not a timing: the work ends long before
        if 'id="progress"' not in shown.text:
            return shown
        time.sleep(0.05)
        shown = page.client.get(shown.url)
    raise AssertionError("the work did not end")


def planned(page: Page, job: str, target: str = "sandbox"):
    """Plan the job: the Plan page (or the page saying why it could not)."""
    return followed(page, page.post(f"/jobs/{job}/plan", target=target))


def sent(page: Page, job: str):
    """Send the job's plan, follow the progress page until the run ends: its last page."""
    return followed(page, page.post(f"/jobs/{job}/apply"))


def job_of(response) -> str:
    return re.search(r"/jobs/([\w-]+)/", str(response.url)).group(1)
