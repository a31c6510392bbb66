"""Matching: a true-up from the team's own sheet, customers and subscriptions by name (README,
"Matching"), against the sandbox over HTTP and the built-in one in-process."""

from __future__ import annotations

import json
import uuid

import polars as pl
import pytest
from conftest import FAST, SAMPLES, current, server, stats

from bulkpatch import apply_file, check_file, export_file, plan_file
from bulkpatch.errors import InputError
from bulkpatch.sandbox.customers import LOOKALIKE_ID
from bulkpatch.sandbox.seed import SYNTHETIC_NS

ALPINE = "3a1f0c2e-7b6d-4e5f-9a8b-1c2d3e4f5a60"
CONTOSO = "4b2e1d3f-8c7e-4f60-8b9c-2d3e4f5a6b71"
BRIGHT = "5c3f2e40-9d8f-4071-9cad-3e4f5a6b7c82"
SALES, OPS, E3 = (f"6d40{n}f51-ae90-4182-8dbe-4f5a6b7c8d93" for n in "123")
EXCHANGE = "7e514062-bfa1-4293-9ecf-5a6b7c8d9ea4"
CONTOSO_E3 = "8f625173-c0b2-43a4-8fd0-6b7c8d9eafb5"
HEAD = ["Customer", "Domain", "Customer ID", "Subscription ID", "Product"]
HEAD += ["Current friendly name", "Term", "Current seats", "Current status"]
SEED = [
    HEAD,
    ["Alpine Café GmbH", "alpine.example", ALPINE, SALES, "Power BI Pro", "Sales team", "P1Y"],
    ["Alpine Café GmbH", "alpine.example", ALPINE, OPS, "Power BI Pro", "Ops team", "P1Y"],
    ["Alpine Café GmbH", "alpine.example", ALPINE, E3, "Microsoft 365 E3", "E3", "P1Y"],
    ["Contoso Ltd", "contoso.example", CONTOSO, CONTOSO_E3, "Microsoft 365 E3", "E3", "P1Y"],
    ["Bright Wave", "brightwave.example", BRIGHT, EXCHANGE, "CFQ7TTC0LH16:0001", "Mail", "P1Y"],
]
for _row, _seats in zip(SEED[1:], ("10", "12", "20", "5", "8"), strict=True):
    _row += [_seats, "active"]


@pytest.fixture
def seeded(write_csv):
    """A real sandbox on 127.0.0.1 holding the seed's named customers (and the look-alike)."""
    with server(write_csv(SEED, "seed.csv")) as running:
        yield running


def names(write_csv, rows: list[list[str]], name: str = "names.csv"):
    head = ["Customer", "Domain", "Product", "Offer ID", "Friendly name", "Seats"]
    return write_csv([head, *rows], name)


def outcomes(folder, name: str) -> dict[int, tuple[str, str]]:
    frame = pl.read_csv(folder / name, infer_schema=False)
    message = "errors" if "errors" in frame.columns else "error_message"
    return {
        int(r["row"]): (r["outcome"], r.get(message) or "")
        for r in frame.select("row", "outcome", message).to_dicts()
    }


def test_rows_by_name_domain_offer_name_offer_id_and_friendly_name_are_applied(
    seeded, write_csv, tmp_path
):
    url, _ = seeded
    sheet = names(
        write_csv,
        [
            ["  alpine CAFE gmbh ", "", "Microsoft 365 E3", "", "", "25"],  # folded name
            ["", "ALPINE.example", "Power BI Pro", "", "Ops team", "15"],  # domain, two told apart
            ["Bright Wave", "", "", "CFQ7TTC0LH16:0001", "", "9"],  # the offer by its id
        ],
    )
    run = apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    served = stats(url)
    assert outcomes(tmp_path / "a", "results.csv") == {2: ("ok", ""), 3: ("ok", ""), 4: ("ok", "")}
    assert current(url, ALPINE, E3)["quantity"] == 25
    assert current(url, ALPINE, OPS)["quantity"] == 15
    assert current(url, ALPINE, SALES)["quantity"] == 10  # its namesake untouched
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 9
    # one customer page, one list per customer, no other read: the lists were the reads
    assert served["calls"]["GET"] == {"customers": 1, "subscriptions": 2}
    matched = pl.read_csv(tmp_path / "a" / "matched.csv", infer_schema=False)
    assert matched.get_column("Customer ID").to_list() == [ALPINE, ALPINE, BRIGHT]
    assert matched.get_column("Subscription ID").to_list() == [E3, OPS, EXCHANGE]
    assert matched.get_column("Matched by").to_list() == [
        "name + offer",
        "domain + offer and friendly name",
        "name + offer",
    ]
    by = {m["row"]: m["subscription_by"] for m in run.summary()["sheets"][0]["matching"]}
    assert by == {2: "offer", 3: "offer and friendly name", 4: "offer"}


def test_two_customers_alike_stop_the_row_naming_both(seeded, write_csv, tmp_path):
    url, _ = seeded
    sheet = names(write_csv, [["Contoso Ltd", "", "Microsoft 365 E3", "", "", "6"]])
    plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    ((outcome, message),) = outcomes(tmp_path / "p", "plan.csv").values()
    assert outcome == "invalid"
    assert CONTOSO in message and LOOKALIKE_ID in message
    assert "contoso.example" in message and "contosoltdeu.onmicrosoft.com" in message
    assert "add a Domain column" in message
    with_domain = names(
        write_csv, [["Contoso Ltd", "contoso.com", "Microsoft 365 E3", "", "", "6"]]
    )
    plan_file(with_domain, target=url, out=tmp_path / "q", settings=FAST)
    assert outcomes(tmp_path / "q", "plan.csv")[2][0] == "change"


def test_two_subscriptions_alike_list_each_and_the_column_that_tells_them_apart(
    seeded, write_csv, tmp_path
):
    url, _ = seeded
    sheet = names(write_csv, [["Alpine Café GmbH", "", "Power BI Pro", "", "", "30"]])
    run = plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    ((outcome, message),) = outcomes(tmp_path / "p", "plan.csv").values()
    assert outcome == "invalid"
    assert f"{SALES} (Sales team, 10 seats, P1Y" in message
    assert f"{OPS} (Ops team, 12 seats, P1Y" in message
    assert "add a Friendly name cell" in message
    (problem,) = run.summary()["sheets"][0]["problems"]
    assert problem["code"] == "match.subscriptions_alike" and problem["column"] == "Product"
    assert stats(url)["calls"].get("PATCH") is None


def test_no_match_says_what_comes_closest_and_never_uses_it(seeded, write_csv, tmp_path):
    url, _ = seeded
    sheet = names(
        write_csv,
        [
            ["Alpine Cafe AG", "", "Microsoft 365 E3", "", "", "21"],
            ["Bright Wave", "", "Exchange Online (Plan 2)", "", "", "9"],
        ],
    )
    run = plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    found = outcomes(tmp_path / "p", "plan.csv")
    assert found[2][0] == found[3][0] == "invalid"
    assert 'the closest is "Alpine Café GmbH" (alpine.example), not used' in found[2][1]
    assert 'the closest it has is "Exchange Online (Plan 1)", not used' in found[3][1]
    codes = [p["code"] for p in run.summary()["sheets"][0]["problems"]]
    assert codes == ["match.no_customer", "match.no_subscription"]
    assert run.entries == []


def test_a_plan_whose_names_now_match_something_else_is_refused(seeded, write_csv, tmp_path):
    url, sandbox = seeded
    sheet = names(write_csv, [["Alpine Café GmbH", "", "Microsoft 365 E3", "", "", "22"]])
    planned = plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    assert [e["change"]["resource_id"] for e in planned.entries] == [E3]
    # meanwhile the customer buys a second E3: the row's names no longer name one subscription
    bought = {**current(url, ALPINE, E3), "id": "9a736284-d1c3-44b5-9a01-7c8d9eafb0c6"}
    sandbox.store.put_many("subscriptions", [(ALPINE, bought)])
    with pytest.raises(InputError) as refused:
        apply_file(plan_dir=tmp_path / "p", out=tmp_path / "a", settings=FAST)
    assert f"row 2 (match.moved): planned subscription {E3}, now none" in str(refused.value)
    assert "Nothing was sent" in str(refused.value)
    assert stats(url)["calls"].get("PATCH") is None
    assert current(url, ALPINE, E3)["quantity"] == 20


def test_a_plan_whose_names_still_match_is_applied_with_one_list_per_customer(
    seeded, write_csv, tmp_path
):
    url, _ = seeded
    sheet = names(write_csv, [["Bright Wave", "", "Exchange Online (Plan 1)", "", "", "13"]])
    plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    before = stats(url)["calls"]["GET"]
    run = apply_file(plan_dir=tmp_path / "p", out=tmp_path / "a", settings=FAST)
    after = stats(url)["calls"]["GET"]
    assert run.figures["outcomes"]["ok"] == 1
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 13
    # matched again from fresh reads: one customer page, one list (also the write's read)
    assert after["customers"] - before["customers"] == 1
    assert after["subscriptions"] - before["subscriptions"] == 1


def test_matched_csv_used_again_plans_the_same_with_no_matching(seeded, write_csv, tmp_path):
    url, _ = seeded
    sheet = names(
        write_csv,
        [
            ["Alpine Café GmbH", "", "Microsoft 365 E3", "", "", "26"],
            ["", "brightwave.example", "Exchange Online (Plan 1)", "", "", "11"],
        ],
    )
    first = plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    before = stats(url)["calls"]["GET"]
    again = plan_file(tmp_path / "p" / "matched.csv", target=url, out=tmp_path / "q", settings=FAST)
    after = stats(url)["calls"]["GET"]

    def asked(run):
        return [
            (e["change"]["resource_id"], e["change"]["values"], e["outcome"]) for e in run.entries
        ]

    assert (
        asked(again)
        == asked(first)
        == [
            (E3, {"quantity": 26}, "change"),
            (EXCHANGE, {"quantity": 11}, "change"),
        ]
    )
    assert after["customers"] == before["customers"]  # no customer list read again
    assert again.summary()["sheets"][0]["matching"] == []
    assert not (tmp_path / "q" / "matched.csv").exists()


def test_check_offline_says_which_rows_plan_will_match(write_csv, tmp_path):
    sheet = names(
        write_csv,
        [
            ["Alpine Café GmbH", "", "Microsoft 365 E3", "", "", "26"],
            ["", "", "", "", "", "5"],  # names nothing: missing ids, as before
        ],
    )
    run = check_file(sheet, out=tmp_path / "c")
    part = run.summary()["sheets"][0]
    assert part["to_match"] == 1 and part["valid"] == 1 and part["invalid"] == 1
    assert {p["code"] for p in part["problems"]} == {"value.missing"}


def test_the_names_only_sample_goes_from_sheet_to_results_in_process(cli, tmp_path):
    """The built-in sandbox (in-process): every row matched and applied, or stopped with its
    candidates."""
    done = cli("apply", SAMPLES / "true-up-by-name.csv", "--out", tmp_path / "a", "--json")
    summary = json.loads(done.stdout)
    found = outcomes(tmp_path / "a", "results.csv")
    assert [found[r][0] for r in range(2, 8)] == ["ok"] * 6, done.stdout
    assert [found[r][0] for r in range(8, 12)] == ["invalid"] * 4
    codes = [p["code"] for p in summary["sheets"][0]["problems"]]
    assert codes == [
        "match.customers_alike",
        "match.subscriptions_alike",
        "match.no_customer",
        "match.no_subscription",
    ]
    values = [p["value"] for p in summary["sheets"][0]["problems"]]
    assert values == ["Contoso Ltd", "Microsoft 365 E3", "Northwind Trading", "Power BI Premium"]
    assert summary["sheets"][0]["to_match"] == 10  # as check counts them
    matching = summary["sheets"][0]["matching"]
    assert [m["code"] is None for m in matching] == [True] * 6 + [False] * 4
    matched = pl.read_csv(tmp_path / "a" / "matched.csv", infer_schema=False)
    assert matched.get_column("Matched by").to_list()[:2] == ["name and domain + offer"] * 2
    assert matched.get_column("Matched by").to_list()[6:] == ["not matched"] * 4
    remarks = {m["header"]: m["remark"] for m in summary["sheets"][0]["mapping"]}
    assert remarks["Matched by"] == "how plan found the row's ids; never sent"


def test_two_rows_that_find_one_subscription_are_both_an_error(seeded, write_csv, tmp_path):
    url, _ = seeded
    sheet = names(
        write_csv,
        [
            ["Alpine Café GmbH", "", "Microsoft 365 E3", "", "", "23"],
            ["", "alpine.com", "microsoft 365 e3", "", "", "24"],  # its custom domain
        ],
    )
    run = plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    found = outcomes(tmp_path / "p", "plan.csv")
    assert found[2][0] == found[3][0] == "invalid"
    assert f'"{E3}" was found for rows 2, 3 by their names' in found[2][1]
    assert run.entries == []


def test_a_workbook_gets_matched_xlsx_and_resume_keeps_the_planned_ids(
    seeded, write_xlsx, tmp_path
):
    url, _ = seeded
    book = write_xlsx(
        {
            "Subscriptions": [
                ["Company", "Offer", "Licenses"],
                ["Bright Wave", "Exchange Online (Plan 1)", 14],
            ]
        }
    )
    applied = apply_file(book, target=url, out=tmp_path / "a", settings=FAST)
    assert applied.figures["outcomes"]["ok"] == 1, applied.figures
    assert (tmp_path / "a" / "matched.xlsx").is_file()
    again = pl.read_excel(tmp_path / "a" / "matched.xlsx", sheet_name="Subscriptions")
    assert again.row(0, named=True)["Subscription ID"] == EXCHANGE
    assert again.row(0, named=True)["Matched by"] == "name + offer"
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 14


RECON = ["PartnerId", "CustomerId", "CustomerName", "CustomerDomainName", "ProductName"]
RECON += ["ChargeType", "UnitPrice", "Quantity", "SubscriptionId", "BillableQuantity"]
RECON += ["BillingFrequency", "UnitType", "OrderId"]
PARTNER = "0e195b37-4574-4539-bc42-0e539b9684c0"


def recon_rows(extra: list[str] | None = None) -> list[list[str]]:
    """Two charge lines of one subscription and one of another, as the file has them."""
    alpine = [ALPINE, "Alpine Café GmbH", "alpine.example", "Microsoft 365 E3"]
    bright = [BRIGHT, "Bright Wave", "brightwave.example", "Exchange Online (Plan 1)"]
    lines = [
        [*alpine, "new", "36", "3", E3],
        [*alpine, "cycleCharge", "36", "17", E3],
        [*bright, "new", "4", "8", EXCHANGE],
    ]
    rows = [[PARTNER, *line, line[6], "Monthly", "Licenses", "0ET2qaZ"] for line in lines]
    return [[*row, cell] for row, cell in zip(rows, extra, strict=True)] if extra else rows


def test_a_reconciliation_file_is_named_and_alone_asks_for_nothing(write_csv, tmp_path):
    run = check_file(write_csv([RECON, *recon_rows()], "recon.csv"), out=tmp_path / "c")
    part = run.summary()["sheets"][0]
    assert part["no_change"] == 3 and part["invalid"] == 0  # charge lines are no duplicates
    roles = {m["header"]: m["role"] for m in part["mapping"]}
    assert roles["Quantity"] == roles["PartnerId"] == roles["BillingFrequency"] == "note"
    assert roles["CustomerId"] == roles["SubscriptionId"] == "key"
    (said,) = part["skipped"]
    assert "invoice reconciliation file" in said and "add a Seats column" in said


def test_a_reconciliation_file_with_seats_added_is_one_change_per_subscription(
    seeded, write_csv, tmp_path
):
    url, _ = seeded
    sheet = write_csv([[*RECON, "Seats"], *recon_rows(["21", "21", "9"])], "recon.csv")
    run = apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    assert sorted(c.rows for c in run.prepared.changes) == [[2, 3], [4]]
    assert not any("add a Seats column" in s for s in run.summary()["sheets"][0]["skipped"])
    assert current(url, ALPINE, E3)["quantity"] == 21
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 9
    assert stats(url)["calls"]["PATCH"]["subscription"] == 2
    asked_twice = [[*RECON, "Seats"], *recon_rows(["21", "22", "9"])]
    refused = check_file(write_csv(asked_twice, "twice.csv"), out=tmp_path / "c")
    assert refused.summary()["sheets"][0]["invalid"] == 2  # one subscription, two totals
    said = refused.summary()["sheets"][0]["problems"][0]["message"]
    assert "charge lines of one subscription that ask different changes" in said


@pytest.mark.parametrize(
    ("customer", "subscription", "seats"),
    [
        ("Customer Tenant ID", "Sub ID", "Licences"),
        ("Tenant", "Subscription", "Qty"),
        ("Customer ID", "Subscription ID", "Licenses"),
    ],
)
def test_headers_finance_teams_type(write_csv, tmp_path, customer, subscription, seats):
    sheet = write_csv([[customer, subscription, seats, "Renewal date"], [ALPINE, E3, "5", ""]])
    mapping = check_file(sheet, out=tmp_path / "c").summary()["sheets"][0]["mapping"]
    assert [m["field"] for m in mapping] == [
        "customer_id",
        "subscription_id",
        "quantity",
        "commitmentEndDate",
    ]


def test_a_resume_takes_the_ids_its_plan_recorded_and_reads_no_names(seeded, write_csv, tmp_path):
    url, _ = seeded
    sheet = names(
        write_csv,
        [
            ["Bright Wave", "", "Exchange Online (Plan 1)", "", "", "15"],
            ["Alpine Café GmbH", "", "Power BI Pro", "", "", "3"],  # two alike: stops
        ],
    )
    apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    pages = stats(url)["calls"]["GET"]["customers"]
    again = apply_file(resume_dir=tmp_path / "a", settings=FAST)
    assert stats(url)["calls"]["GET"]["customers"] == pages
    found = outcomes(tmp_path / "a", "results.csv")
    assert found[2][0] == "ok" and found[3][0] == "invalid"
    assert "no change in this run's plan" in found[3][1]
    assert again.figures["outcomes"]["ok"] == 1
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 15


def test_check_prints_how_many_rows_plan_will_match(cli, tmp_path):
    done = cli("check", SAMPLES / "true-up-by-name.csv", "--out", tmp_path / "c")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 valid, 0 invalid" in done.stdout
    assert "10 rows name their customer or subscription without ids" in done.stdout


def test_no_header_row_names_the_closest_row_and_its_near_misses(write_csv, tmp_path):
    sheet = write_csv(
        [
            ["Month-end true-up", "", ""],
            ["", "", ""],
            ["Customer Tenant-Idd", "Sub-Idd", "Quantitiy"],
            [ALPINE, E3, "3"],
        ]
    )
    with pytest.raises(InputError) as stopped:
        check_file(sheet, out=tmp_path / "c")
    assert (
        "row 3 comes closest: it has 'Customer Tenant-Idd', 'Sub-Idd', 'Quantitiy': did you "
        "mean 'Customer tenant id', 'Sub id', 'Quantity'?"
    ) in str(stopped.value)


PORTAL = ["Microsoft ID", "Company name", "Primary domain name", "Relationship"]
PORTAL_ROWS = [
    [ALPINE, "Alpine Café GmbH", "alpine.example", "Reseller"],
    [BRIGHT, "Bright Wave", "brightwave.example", "Reseller"],
]


def test_the_portal_customer_list_alone_is_named_and_says_how_to_ask(write_csv, tmp_path):
    sheet = write_csv([PORTAL, *PORTAL_ROWS], "customers.csv")
    with pytest.raises(InputError) as refused:
        check_file(sheet, out=tmp_path / "c")
    said = str(refused.value)
    assert "Partner Center's customer list" in said and "asks for nothing" in said
    assert f"bulkpatch export --customers {sheet}" in said
    assert "add a Product column" in said


def test_the_portal_customer_list_feeds_export_and_with_seats_is_a_true_up(
    seeded, write_csv, tmp_path
):
    url, _ = seeded
    listed = write_csv([PORTAL, *PORTAL_ROWS], "customers.csv")
    exported = export_file(
        customers_sheet=listed, target=url, settings=FAST, out=tmp_path / "e.csv"
    )
    frame = pl.read_csv(tmp_path / "e.csv", infer_schema=False)
    assert exported.customers == 2
    assert sorted(set(frame.get_column("Customer ID"))) == sorted([ALPINE, BRIGHT])
    # the list with the offer and the seats each should hold: Microsoft ID is the customer id
    sheet = write_csv(
        [
            [*PORTAL, "Product", "Seats"],
            [*PORTAL_ROWS[0], "Microsoft 365 E3", "26"],
            [*PORTAL_ROWS[1], "CFQ7TTC0LH16:0001", "9"],
        ],
        "true-up.csv",
    )
    run = apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    part = run.summary()["sheets"][0]
    roles = {m["header"]: m["role"] for m in part["mapping"]}
    assert roles["Microsoft ID"] == "key" and roles["Relationship"] == "note"
    assert outcomes(tmp_path / "a", "results.csv") == {2: ("ok", ""), 3: ("ok", "")}
    assert current(url, ALPINE, E3)["quantity"] == 26
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 9


# the license-based file before new commerce: its SubscriptionId is a billing id, its
# SyndicationPartnerSubscriptionNumber the Subscription ID, its OfferId not the price list's
LICENSED = ["PartnerId", "CustomerId", "CustomerName", "OrderId", "SubscriptionId"]
LICENSED += ["SyndicationPartnerSubscriptionNumber", "OfferId", "DurableOfferId", "OfferName"]
LICENSED += ["ChargeType", "UnitPrice", "Quantity", "DomainName", "SubscriptionName"]


def licensed_rows(extra: list[str] | None = None) -> list[list[str]]:
    """Two charge lines of one subscription and one of another."""
    alpine = [ALPINE, "Alpine Café GmbH", "566890604832738111", "usCBMgAAAAAAAAIA", E3]
    bright = [BRIGHT, "Bright Wave", "566890604832738112", "usCBMgAAAAAAAAIB", EXCHANGE]
    offer = ["FE616D64-E9A8-40EF-843F-152E9BBEF3D1", "1017D7F3-6D7F-4BFA-BDD8-79BC8F104E0C"]
    lines = [
        [*alpine, *offer, "Microsoft 365 E3", "PurchaseFee", "6.82", "2", "alpine.example", "E3"],
        [*alpine, *offer, "Microsoft 365 E3", "PurchaseFee", "6.82", "18", "alpine.example", "E3"],
        [*bright, *offer, "Exchange Online", "PurchaseFee", "4.00", "8", "brightwave.example", "M"],
    ]
    rows = [[PARTNER, *line] for line in lines]
    return [[*row, cell] for row, cell in zip(rows, extra, strict=True)] if extra else rows


def test_a_license_based_reconciliation_file_keys_on_its_syndication_number(
    seeded, write_csv, tmp_path
):
    run = check_file(write_csv([LICENSED, *licensed_rows()], "recon.csv"), out=tmp_path / "c")
    part = run.summary()["sheets"][0]
    assert part["no_change"] == 3 and part["invalid"] == 0  # nothing asked, no billing id refused
    roles = {m["header"]: m["role"] for m in part["mapping"]}
    assert roles["SyndicationPartnerSubscriptionNumber"] == roles["CustomerId"] == "key"
    assert roles["SubscriptionId"] == roles["OfferId"] == roles["Quantity"] == "note"
    assert roles["SubscriptionName"] == roles["DomainName"] == "note"
    assert any("invoice reconciliation file" in s for s in part["skipped"])
    url, _ = seeded
    sheet = write_csv([[*LICENSED, "Seats"], *licensed_rows(["22", "22", "9"])], "seats.csv")
    applied = apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    assert sorted(c.rows for c in applied.prepared.changes) == [[2, 3], [4]]
    assert current(url, ALPINE, E3)["quantity"] == 22
    assert current(url, BRIGHT, EXCHANGE)["quantity"] == 9


def ended(customer: str, status: str) -> str:
    """The sandbox's ended subscription of `customer` ("Subscription lifecycle states")."""
    return str(uuid.uuid5(SYNTHETIC_NS, f"{customer.lower()}-{status}"))


def test_an_ended_subscription_is_never_matched_nor_reactivated(seeded, write_csv, tmp_path):
    url, _ = seeded
    gone = current(url, BRIGHT, ended(BRIGHT, "expired"))
    assert gone["status"] == "expired"
    head = ["Customer", "Product", "Status", "Seats"]
    sheet = write_csv([head, ["Bright Wave", gone["offerName"], "active", "9"]], "ended.csv")
    run = apply_file(sheet, target=url, out=tmp_path / "a", settings=FAST)
    ((outcome, message),) = outcomes(tmp_path / "a", "results.csv").values()
    assert outcome == "invalid" and "has ended" in message, message
    assert f"{gone['id']} (expired)" in message
    assert run.summary()["sheets"][0]["matching"][0]["closest"][0]["id"] == gone["id"]
    # named by its ids, the change is refused before it is sent, and nothing is sent
    by_id = write_csv(
        [
            ["Customer ID", "Subscription ID", "Status", "Quantity"],
            [BRIGHT, gone["id"], "active", "9"],
        ],
        "by-id.csv",
    )
    apply_file(by_id, target=url, out=tmp_path / "b", settings=FAST)
    ((outcome, message),) = outcomes(tmp_path / "b", "results.csv").values()
    assert outcome != "ok" and "has ended" in message, (outcome, message)
    assert current(url, BRIGHT, gone["id"])["status"] == "expired"
    assert stats(url)["calls"].get("PATCH", {}) == {}


def test_a_plan_with_nothing_to_send_says_so_in_words_for_one_row(seeded, write_csv, cli):
    url, _ = seeded
    same = write_csv(
        [["Customer", "Product", "Seats"], ["Alpine Café GmbH", "Microsoft 365 E3", "20"]]
    )
    checked = cli("check", same, "--out", "c")
    assert "1 row names its customer or subscription without ids" in checked.stdout
    planned = cli("plan", same, "--target", url, "--out", "p")
    assert "Nothing to send: no row would change what Partner Center holds." in planned.stdout
    assert "Apply it with" not in planned.stdout
    wrong = write_csv(
        [["Customer ID", "Subscription ID", "Quantity"], [ALPINE, E3, "ten"]], "w.csv"
    )
    said = cli("check", wrong, "--out", "w").stdout
    assert "1 row to fix: it is in" in said and "fix it and check again" in said


def test_a_product_and_an_offer_id_naming_two_subscriptions_say_so(seeded, write_csv, tmp_path):
    url, _ = seeded
    offer = current(url, ALPINE, E3)["offerId"].split(":")[0]  # its E3, not its Power BI Pro
    sheet = names(write_csv, [["Alpine Café GmbH", "", "Power BI Pro", offer, "", "5"]])
    plan_file(sheet, target=url, out=tmp_path / "p", settings=FAST)
    ((outcome, message),) = outcomes(tmp_path / "p", "plan.csv").values()
    assert outcome == "invalid" and "closest" not in message, message
    assert "Product and Offer ID each name a subscription it has, but not the same one" in message
