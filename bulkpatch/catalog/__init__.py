"""The field catalog: every field of the two Partner Center request bodies, in one table.

Takes in: nothing (it is transcribed from Microsoft's "Update subscription by ID" and "Update
an existing order" pages). Hands on: each field's type, role in a sheet (key, settable,
expected, note), aliases, bounds and JSON path, which every stage reads (`fields`), and what a
field is (`model`).
"""
