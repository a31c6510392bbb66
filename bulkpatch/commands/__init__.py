"""The library API: one function per command, each reading as the pipeline (load, check,
plan, apply, report), over a run folder.

Takes in: a sheet's path and the command's keywords. Hands on: a result of one shape per
command (`counts()`, `summary()`, `folder`, `reports`). The CLI and the page are thin faces
on these functions.
"""
