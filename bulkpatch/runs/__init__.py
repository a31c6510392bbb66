"""The run folder and its journal: one run's files, written by one process at a time.

Takes in: the input file, the run's settings, and what the stages hand over (plans, results,
reports). Hands on: a `RunFolder` (`folder`: every file name, the manifest, the fingerprint,
the lock, new / from a plan / resumed), the append-only `journal` that a resume replays, the
`ledger` of seat changes already applied, and the shape every command returns (`result`).
"""
