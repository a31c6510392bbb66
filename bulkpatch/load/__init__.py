"""Stage 1, load: a CSV or Excel file, as the finance team keeps it, into sheets of text.

Takes in: a path. Hands on: `Sheet`s (`sheet`): cells as text with the row numbers the user
sees, each header matched to a catalog field or kept as a note (`headers`), the file's
dialect and cell types for the reports, and what an export recorded of the values it read
(`record`). `reader` decides the file's kind and sheets; `csv_file` and `excel_file` read it.
"""
