"""Dates from Excel date cells come back as dates in a CSV report (`2027-03-01`), whichever
date format the cell has, and a cell whose own format shows a time keeps its time."""

from __future__ import annotations

import datetime

import polars as pl
import xlsxwriter
from conftest import CUSTOMER, SUB1

from bulkpatch.commands.api import check_file

DATE_FORMATS = [14, "m/d/yyyy", "d-mmm-yy", "dd.mm.yyyy", "yyyy-mm-dd"]  # 14: Excel's own


def test_excel_date_cells_come_back_as_dates_in_csv(tmp_path):
    book = tmp_path / "dates.xlsx"
    workbook = xlsxwriter.Workbook(str(book))
    ws = workbook.add_worksheet("Subscriptions")
    names = [f"Date {i}" for i in range(len(DATE_FORMATS))]
    ws.write_row(0, 0, ["Customer ID", "Subscription ID", "Commitment end date", *names, "At"])
    ws.write_row(1, 0, [CUSTOMER, SUB1])
    midnight = datetime.datetime(2027, 3, 1)
    for i, form in enumerate(DATE_FORMATS):
        ws.write_datetime(1, 2 + i, midnight, workbook.add_format({"num_format": form}))
    ws.write_datetime(1, 2 + len(DATE_FORMATS), midnight, workbook.add_format({"num_format": 14}))
    ws.write_datetime(
        1,
        3 + len(DATE_FORMATS),
        datetime.datetime(2027, 3, 1, 9, 30),
        workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    )
    workbook.close()
    run = check_file(book, out=tmp_path / "run")
    row = pl.read_csv(tmp_path / "run" / "check.csv", infer_schema=False).row(0, named=True)
    assert run.counts()["invalid"] == 0
    assert {row[n] for n in ["Commitment end date", *names]} == {"2027-03-01"}
    assert row["At"].startswith("2027-03-01 09:30")
