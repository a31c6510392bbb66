"""Issue 21, points 1 and 7: an answer counts only for what it shows, for the resource asked.

A fake Partner Center on 127.0.0.1 (uvicorn): the real sandbox behind it, with the answers a
test chooses broken on their way out (empty, not JSON, truncated, another id, wrong types, too
large, 429s, slow, a 202 pointing elsewhere). Each test asserts what the user sees in the
results (outcome, message) and what reached the server: no PATCH that should not have gone,
and never a body read for one id sent back under another's path.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import polars as pl
import pytest
from conftest import ids, journal_calls, results, true_up, uvicorn_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bulkpatch.commands.apply import apply_file
from bulkpatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, SeedSpec
from bulkpatch.settings import Settings

FAST = Settings(rate=60_000, concurrency=2, backoff=0.001, poll_timeout=1.0)
CUSTOMER, OTHER_CUSTOMER = ids(2, "customer")
SUB = ids(1, "sub-0")[0]  # the first customer's first subscription: a row asking 10 seats
SUB_B = ids(1, "sub-1")[0]  # the second customer's: a row turning auto-renew off
SUB_B_PATH = f"/v1/customers/{OTHER_CUSTOMER}/subscriptions/{SUB_B}"
OTHER = "11111111-1111-4111-8111-111111111111"
Answer = Callable[[httpx.Response], Response | Awaitable[Response]]


@dataclass
class Break:
    """Breaks the answers to calls of `method` whose path ends with `where`: after the first
    `after` of them, at most `times` (None: every one). `forward`: the real sandbox gets the
    call first (a PATCH is applied), else the answer is made from what the resource holds
    (the PATCH never reaches it)."""

    method: str
    answer: Answer
    where: str = ""
    after: int = 0
    times: int | None = None
    forward: bool = True
    seen: int = 0

    def applies(self, method: str, path: str) -> bool:
        if method != self.method or not path.endswith(self.where):
            return False
        self.seen += 1
        broken = self.seen - self.after
        return broken > 0 and (self.times is None or broken <= self.times)


@dataclass
class Call:
    method: str
    path: str
    body: dict | None
    request_id: str


@dataclass
class FakePartnerCenter:
    """The sandbox seeded from a sheet, behind a front that breaks chosen answers."""

    sandbox: Sandbox
    breaks: list[Break] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        content = await request.body()
        path = request.url.path
        self.calls.append(
            Call(
                request.method,
                path,
                json.loads(content) if content else None,
                request.headers.get("ms-requestid", ""),
            )
        )
        rule = next((b for b in self.breaks if b.applies(request.method, path)), None)
        if rule is None or rule.forward:
            real = await self._forward(request.method, path, content, request.headers)
        else:  # what the resource holds, untouched: the base of the broken answer
            real = await self._forward("GET", path, b"", request.headers)
        if rule is not None:
            made = rule.answer(real)
            return await made if inspect.isawaitable(made) else made
        kept = {k: v for k, v in real.headers.items() if k in ("content-type", "location")}
        return Response(real.content, real.status_code, headers=kept)

    async def _forward(self, method: str, path: str, content: bytes, sent) -> httpx.Response:
        headers = {k: v for k, v in sent.items() if k not in ("host", "content-length")}
        async with httpx.AsyncClient(
            transport=SandboxTransport(self.sandbox.app), base_url="http://127.0.0.1"
        ) as inner:
            return await inner.request(method, path, content=content, headers=headers)

    def sent(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def holds(self, sub: str = SUB, customer: str = CUSTOMER) -> dict:
        return self.sandbox.store.get("subscriptions", customer, sub, 0)


@contextmanager
def partner_center(sheet: Path, *breaks: Break, **config) -> Iterator[FakePartnerCenter]:
    fake = FakePartnerCenter(Sandbox(SandboxConfig(seed=SeedSpec(sheets=[sheet]), **config)))
    fake.breaks.extend(breaks)
    app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=["GET", "PATCH", "POST"])])
    with uvicorn_server(app) as url:
        fake.url = url
        yield fake


def run(sheet: Path, fake: FakePartnerCenter, out: Path, **tuning):
    return apply_file(sheet, target=fake.url, out=out, settings=replace(FAST, **tuning))


def rows(folder: Path) -> dict[str, dict]:
    """The result sheet's rows by subscription id."""
    return {r["Subscription ID"]: r for r in results(folder).to_dicts()}


# --- broken answers: what a test sends back instead of the real one ----------------------------


def empty(real):
    return Response(b"", 200)


def html(real):
    return Response(b"<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html")


def truncated(real):
    return Response(real.content[: len(real.content) // 2], 200, media_type="application/json")


def array(real):
    return JSONResponse([real.json()])


def string(real):
    return JSONResponse("done")


def null(real):
    return Response(b"null", 200, media_type="application/json")


def nested(real):
    return Response(b"[" * 100_000, 200, media_type="application/json")


def huge(real):  # past the 100,000 bytes the tests let bulkpatch read
    return Response(b'{"id": "' + b"9" * 200_000 + b'"}', 200, media_type="application/json")


def other_id(real):
    return JSONResponse({**real.json(), "id": OTHER})


def with_values(**values) -> Answer:
    return lambda real: JSONResponse({**real.json(), **values})


def without(name: str) -> Answer:
    return lambda real: JSONResponse({k: v for k, v in real.json().items() if k != name})


def nan_quantity(real):
    text = json.dumps({**real.json(), "quantity": 0}).replace('"quantity": 0', '"quantity": NaN')
    return Response(text.encode(), 200, media_type="application/json")


# (answer, what the row says Partner Center answered; {sub} is the subscription asked)
SHAPES = {
    "empty": (empty, "with an empty body for subscription {sub}"),
    "html": (
        html,
        'with text that is not JSON ("<html><body>502 Bad Gateway</body></html>") for '
        "subscription {sub}",
    ),
    "truncated": (truncated, "with text that is not JSON ("),
    "array": (array, "with a JSON array [{"),
    "string": (string, "with a JSON string 'done' for subscription {sub}"),
    "null": (null, "with JSON null for subscription {sub}"),
    "nested": (nested, "with text that is not JSON ("),
    "huge": (
        huge,
        "with a body larger than the 100,000 bytes bulkpatch reads for subscription {sub}",
    ),
    "NaN": (nan_quantity, "with text that is not JSON ("),
    "another id": (other_id, f"with subscription {OTHER} for {{sub}}"),
    "no id": (without("id"), "with a subscription without an id for {sub}"),
    "no status": (without("status"), "with subscription {sub} lacking status"),
    "seats as text": (
        with_values(quantity="many"),
        "with subscription {sub} holding quantity 'many', not a whole number",
    ),
    "auto-renew as text": (
        with_values(autoRenewEnabled="yes"),
        "with subscription {sub} holding autoRenewEnabled 'yes', not true or false",
    ),
    "attributes as text": (
        with_values(attributes="etag"),
        "with subscription {sub} holding attributes 'etag', not an object",
    ),
    "a date that is no date": (
        with_values(commitmentEndDate="soon"),
        "with subscription {sub} holding commitmentEndDate 'soon', not a date",
    ),
    "refunds as a list of numbers": (
        with_values(refundableQuantity={"totalQuantity": 1, "details": [1]}),
        "with subscription {sub} holding refundableQuantity.details 1, not an object",
    ),
}


# --- point 1: reads ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_a_read_that_is_not_the_resource_fails_its_row_and_nothing_is_patched(tmp_path, shape):
    answer, words = SHAPES[shape]
    sheet = true_up(tmp_path, customers=2, per=1)  # one subscription each: read with a GET
    with partner_center(sheet, Break("GET", answer, where=SUB)) as fake:
        done = run(sheet, fake, tmp_path / "run", max_answer_bytes=100_000)
        before = fake.holds()["quantity"]
    shown = rows(tmp_path / "run")
    assert shown[SUB]["outcome"] == "failed"
    message = shown[SUB]["error_message"]
    assert message.startswith(
        "reading it failed: Partner Center answered " + words.replace("{sub}", SUB)
    )
    assert shown[SUB]["http_status"] == "200"
    # nothing went for this row: the one PATCH is the other customer's, under its own path
    assert [c.path for c in fake.sent("PATCH")] == [SUB_B_PATH]
    assert before != 10  # the row's 10 seats never went
    assert done.counts()["ok"] == 1  # the other customer's row went as usual
    assert (tmp_path / "run" / "to-fix.csv").is_file() and (tmp_path / "run" / "undo.csv").is_file()


def listed(change: Callable[[dict], object]) -> Answer:
    """The list call's real answer, changed by `change` (which edits the parsed JSON)."""

    def answer(real):
        body = real.json()
        made = change(body)
        return JSONResponse(body if made is None else made)

    return answer


LISTS = {
    "not JSON": (html, 'with text that is not JSON ("<html><body>502 Bad Gateway</body></html>")'),
    "an array of its items": (listed(lambda b: b["items"]), "with a JSON array [{"),
    "items that are not objects": (
        listed(lambda b: {**b, "items": ["a1b2", *b["items"]]}),
        "with a list holding 'a1b2', not a subscription",
    ),
    "no items": (listed(lambda b: {"totalCount": 2}), "with an object holding no list"),
}


@pytest.mark.parametrize("shape", LISTS)
def test_a_list_call_that_is_not_a_list_of_subscriptions_fails_the_customers_rows(tmp_path, shape):
    answer, words = LISTS[shape]
    sheet = true_up(tmp_path, customers=1, per=2)  # two subscriptions: read with one list call
    with partner_center(sheet, Break("GET", answer, where="/subscriptions")) as fake:
        done = run(sheet, fake, tmp_path / "run")
    shown = results(tmp_path / "run")
    assert set(shown.get_column("outcome")) == {"failed"}
    said = f"reading it failed: Partner Center answered the list of customer {CUSTOMER}'s "
    assert all(m.startswith(said + "subscriptions " + words) for m in shown["error_message"])
    assert fake.sent("PATCH") == [] and done.counts()["failed"] == 2


def test_one_broken_item_of_a_list_fails_its_row_only(tmp_path):
    def seats_as_text(body):
        for item in body["items"]:
            if item["id"] == SUB:
                item["quantity"] = "ten"

    sheet = true_up(tmp_path, customers=1, per=2)
    with partner_center(sheet, Break("GET", listed(seats_as_text), where="/subscriptions")) as fake:
        run(sheet, fake, tmp_path / "run")
    shown = rows(tmp_path / "run")
    assert shown[SUB]["outcome"] == "failed"
    assert shown[SUB]["error_message"] == (
        f"reading it failed: Partner Center answered with subscription {SUB} holding quantity "
        "'ten', not a whole number"
    )
    second = ids(2, "sub-0")[1]
    assert shown[second]["outcome"] == "ok"
    assert [c.path for c in fake.sent("PATCH")] == [
        f"/v1/customers/{CUSTOMER}/subscriptions/{second}"
    ]


# --- point 1: the answer to a PATCH --------------------------------------------------------------

PATCH_SHAPES = [
    s
    for s in SHAPES
    if s not in ("no id", "refunds as a list of numbers", "a date that is no date")
]


@pytest.mark.parametrize("shape", PATCH_SHAPES)
def test_a_200_that_is_not_the_resource_is_read_again_and_counts_only_what_that_read_shows(
    tmp_path, shape
):
    answer, words = SHAPES[shape]
    sheet = true_up(tmp_path, customers=1, per=1)
    with partner_center(sheet, Break("PATCH", answer)) as fake:
        run(sheet, fake, tmp_path / "run", max_answer_bytes=100_000)
        held = fake.holds()
    row = rows(tmp_path / "run")[SUB]
    assert (row["outcome"], row["http_status"]) == ("ok", "200")
    assert row["error_message"].startswith(
        "Partner Center answered 200 " + words.replace("{sub}", SUB)
    )
    assert row["error_message"].endswith("; read again, it shows every change")
    assert held["quantity"] == 10
    assert len(fake.sent("PATCH")) == 1  # the write once, then one more read: never a 2nd PATCH
    assert [c.path for c in fake.sent("GET")] == [
        f"/v1/customers/{CUSTOMER}/subscriptions/{SUB}"
    ] * 2


@pytest.mark.parametrize("shape", ["empty", "another id", "seats as text"])
def test_a_200_that_proves_nothing_and_a_read_that_shows_the_old_value_is_failed(tmp_path, shape):
    answer, words = SHAPES[shape]
    sheet = true_up(tmp_path, customers=1, per=1)
    # the PATCH never reaches the sandbox: Partner Center answered 200 and changed nothing
    with partner_center(sheet, Break("PATCH", answer, forward=False)) as fake:
        done = run(sheet, fake, tmp_path / "run")
        seats = fake.holds()["quantity"]
    row = rows(tmp_path / "run")[SUB]
    assert row["outcome"] == "failed" and done.counts()["ok"] == 0
    assert row["error_message"] == (
        f"Partner Center answered 200 {words.replace('{sub}', SUB)}; read again, quantity is "
        f"still {seats} (asked 10)"
    )
    assert len(fake.sent("PATCH")) == 1 and len(fake.sent("GET")) == 2
    assert not (tmp_path / "run" / "undo.csv").exists()  # nothing applied, nothing to undo


def test_a_200_that_proves_nothing_and_a_read_again_that_does_not_either_is_failed(tmp_path):
    sheet = true_up(tmp_path, customers=1, per=1)
    with partner_center(
        sheet, Break("PATCH", empty, forward=False), Break("GET", other_id, after=1)
    ) as fake:
        run(sheet, fake, tmp_path / "run")
    row = rows(tmp_path / "run")[SUB]
    assert row["outcome"] == "failed"
    assert row["error_message"] == (
        f"Partner Center answered 200 with an empty body for subscription {SUB}; read again, it "
        f"failed: Partner Center answered with subscription {OTHER} for {SUB}"
    )
    assert len(fake.sent("PATCH")) == 1


def test_an_order_answer_without_the_line_it_changed_is_read_again(tmp_path, write_csv):
    order = "ORD-21-1"
    sheet = write_csv(
        [["Customer ID", "Order ID", "Line item", "Status"], [CUSTOMER, order, "0", "cancelled"]]
    )

    def no_lines(real):
        return JSONResponse({**real.json(), "lineItems": []})

    with partner_center(sheet, Break("PATCH", no_lines)) as fake:
        run(sheet, fake, tmp_path / "run")
    row = results(tmp_path / "run").row(0, named=True)
    assert row["outcome"] == "ok", row["error_message"]
    assert row["error_message"] == (
        f"Partner Center answered 200 with order {order} lacking line item 0; read again, it "
        "shows every change"
    )
    assert len(fake.sent("PATCH")) == 1


# --- point 1: a 202's polls, and point 7: a Location elsewhere -----------------------------------


def test_polls_answered_with_another_subscription_leave_the_row_accepted(tmp_path):
    sheet = true_up(tmp_path, customers=1, per=1)
    # the change is visible at once, but every poll is answered with another id
    breaks = Break("GET", other_id, after=1)
    with partner_center(sheet, breaks, accepted_share=1.0, accepted_delay=0) as fake:
        run(sheet, fake, tmp_path / "run")
        polls = len(fake.sent("GET")) - 1
    row = rows(tmp_path / "run")[SUB]
    assert (row["outcome"], row["http_status"]) == ("accepted", "202")
    assert row["error_message"] == (
        f"not confirmed: its last poll was answered with subscription {OTHER} for {SUB}"
    )
    assert polls >= 1 and len(fake.sent("PATCH")) == 1


def relocated(location: str) -> Answer:
    return lambda real: Response(status_code=202, headers={"Location": location})


@pytest.mark.parametrize(
    "where",
    [
        "https://elsewhere.example/customers/{c}/subscriptions/{s}",
        "//elsewhere.example/customers/{c}/subscriptions/{s}",
        "https://127.0.0.1:{port}/customers/{c}/subscriptions/{s}",  # another scheme
        "http://127.0.0.1:1/customers/{c}/subscriptions/{s}",  # another port
        "http://[::1/customers",  # no URL at all
    ],
)
def test_a_202_whose_location_points_elsewhere_is_not_followed(tmp_path, where):
    sheet = true_up(tmp_path, customers=1, per=1)
    with partner_center(sheet) as fake:
        port = fake.url.rsplit(":", 1)[1]
        location = where.format(c=CUSTOMER, s=SUB, port=port)
        fake.breaks.append(Break("PATCH", relocated(location)))
        run(sheet, fake, tmp_path / "run")
    row = rows(tmp_path / "run")[SUB]
    assert (row["outcome"], row["http_status"]) == ("accepted", "202")
    assert row["error_message"] == (
        f"Partner Center accepted it (202) but its Location points elsewhere ({location}), "
        "which bulkpatch never follows: not confirmed; apply the sheet again later to see "
        "whether it holds"
    )
    assert len(fake.sent("GET")) == 1  # the read before the change: no poll anywhere
    assert len(fake.sent("PATCH")) == 1


# --- point 7: 429 without a usable Retry-After, and slow answers ---------------------------------


def too_many(retry_after: str | None) -> Answer:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return lambda real: JSONResponse(
        {"statusCode": 429, "message": "Rate limit is exceeded"}, 429, headers=headers
    )


THROTTLED = {"retry_after_max": 0.02, "throttle_patience": 0.1}


@pytest.mark.parametrize(
    "header", [None, "999999", "soon", "Wed, 21 Oct 2099 07:28:00 GMT", "-1", "1e9", "NaN"]
)
def test_a_service_that_keeps_answering_429_stops_the_run_and_a_resume_finishes_it(
    tmp_path, header
):
    sheet = true_up(tmp_path, customers=2, per=1)
    folder = tmp_path / "run"
    with partner_center(sheet, Break("PATCH", too_many(header), forward=False)) as fake:
        stopped = run(sheet, fake, folder, **THROTTLED)
        refused = fake.sent("PATCH")
        told = set(results(folder).get_column("error_message"))
        fake.breaks.clear()
        resumed = apply_file(resume_dir=folder, settings=replace(FAST, **THROTTLED))
        held = fake.holds()
    said = "no Retry-After" if header is None else f"Retry-After: {header}"
    assert stopped.summary()["stopped"].startswith(
        "Partner Center kept refusing calls with 429 (too many requests): one call was refused "
    )
    assert (
        f"({said}); bulkpatch waits at most 0.02 s at a time and 0.1 s per call"
        in (stopped.summary()["stopped"])
    )
    assert stopped.counts()["not_sent"] == 2 and stopped.counts()["failed"] == 0
    refused_here = (
        "not sent: Partner Center kept answering 429 (too many requests) and the run stopped; "
        "a resume sends it"
    )  # a row whose own call was refused; a row still waiting says why the run stopped
    assert refused_here in told
    assert told <= {refused_here, "not sent: " + stopped.summary()["stopped"]}
    # each wait was cut to 0.02 s, and 0.1 s in all: at most 6 refusals a call, never a hang
    assert 2 <= len(refused) <= 12
    waits = {c.get("retry_after") for c in journal_calls(folder) if c["status"] == 429}
    assert waits == {header}
    assert resumed.counts()["ok"] == 2 and held["quantity"] == 10
    assert results(folder).get_column("outcome").to_list() == ["ok", "ok"]
    request_ids = {c.request_id for c in fake.sent("PATCH") if c.path.endswith(SUB)}
    assert len(request_ids) == 1  # the resume sent the same change with the same MS-RequestId


def test_a_few_429s_without_retry_after_are_waited_out_and_the_row_goes(tmp_path):
    sheet = true_up(tmp_path, customers=1, per=1)
    with partner_center(sheet, Break("PATCH", too_many(None), times=2, forward=False)) as fake:
        done = run(sheet, fake, tmp_path / "run", **THROTTLED)
        held = fake.holds()
    assert done.counts()["ok"] == 1 and not done.summary()["stopped"]
    assert done.summary()["throttled_429"] == 2 and held["quantity"] == 10
    assert len({c.request_id for c in fake.sent("PATCH")}) == 1 and len(fake.sent("PATCH")) == 3


def test_the_cli_stops_with_exit_3_when_429s_never_end_and_resumes_with_exit_0(cli, tmp_path):
    sheet = true_up(tmp_path, customers=1, per=2)
    folder = tmp_path / "run"
    # the first change goes; from then on every PATCH is refused
    refusing = Break("PATCH", too_many("0"), after=1, forward=False)
    with partner_center(sheet, refusing) as fake:
        args = ("--target", fake.url, "--rate", "60000", "--concurrency", "1", "--quiet")
        stopped = cli("apply", sheet, "--out", folder, *args)
        refused = len(fake.sent("PATCH")) - 1
        first = results(folder).get_column("outcome").to_list()
        undo = pl.read_csv(folder / "undo.csv", infer_schema=False)
        fake.breaks.clear()
        resumed = cli("apply", "--resume", folder, "--quiet")
    assert stopped.returncode == 3, stopped.stderr
    assert "Partner Center kept refusing calls with 429" in stopped.stdout + stopped.stderr
    assert f"Resume with: bulkpatch apply --resume {folder}" in stopped.stderr
    assert refused == 31  # 30 waited out (Retry-After: 0), the 31st stopped the run
    assert first == ["ok", "not_sent"] and undo.height == 1  # what went can be put back
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert results(folder).get_column("outcome").to_list() == ["ok", "ok"]


def slow(seconds: float) -> Answer:
    async def answer(real):
        await asyncio.sleep(seconds)
        return Response(real.content, real.status_code, media_type="application/json")

    return answer


def test_a_slow_answer_times_out_and_the_retry_with_the_same_request_id_applies_once(tmp_path):
    sheet = true_up(tmp_path, customers=1, per=1)
    with partner_center(sheet, Break("PATCH", slow(2.0), times=1)) as fake:
        done = run(sheet, fake, tmp_path / "run", call_timeout=0.5)
        applied = dict(fake.sandbox.applied_per_resource)
        patches = fake.sent("PATCH")
    row = rows(tmp_path / "run")[SUB]
    assert (row["outcome"], row["attempts"]) == ("ok", "2")
    assert done.counts()["ok"] == 1 and applied == {SUB: 1}
    assert len(patches) == 2 and patches[0].request_id == patches[1].request_id
    assert patches[0].body == patches[1].body
    timed_out = [c for c in journal_calls(tmp_path / "run") if c["error"] == "timed out"]
    assert [c["method"] for c in timed_out] == ["PATCH"]


def test_answers_that_never_come_stop_the_run_and_nothing_is_patched(tmp_path):
    sheet = true_up(tmp_path, customers=3, per=1)
    with partner_center(sheet, Break("GET", slow(1.0))) as fake:
        done = run(
            sheet, fake, tmp_path / "run", call_timeout=0.2, attempts=2, unreachable_streak=2
        )
    assert "could not be reached 2 times in a row" in done.summary()["stopped"]
    assert done.counts()["not_sent"] == 3 and fake.sent("PATCH") == []
    messages = results(tmp_path / "run").get_column("error_message").to_list()
    assert messages[0] == (
        "not sent: Partner Center could not be reached (no answer after 2 attempts (timed out))"
    )
