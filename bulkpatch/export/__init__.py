"""Export: what Partner Center holds now, written as a sheet made for editing.

Takes in: the customers to read (named, from a sheet, or all) and filters. Hands on: the
workbook or CSV (`book`, its rows streamed by `fast_sheet`), its words for the reader
(`instructions`), and an `ExportRun` (`result`). `read` does the reading, `rows` the rows.
"""
