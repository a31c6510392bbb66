"""Stage 5, report: the user's sheet handed back with a verdict on every row, as CSV and XLSX.

Takes in: the checked sheets, and a plan's entries or an apply's results. Hands on: the tables
(`rows`, `totals`), the files (`writers` and `workbook`), what a report says it is (`stamp`),
the undo sheet (`undo`), and the wording the CLI, the page and the reports share (`words`).
"""
