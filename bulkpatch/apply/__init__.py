"""Stage 4, apply: send the changes, read-modify-write, and prove what Partner Center shows.

Takes in: `Change`s, a client from `network`, and a recorder (the run folder's journal).
Hands on: a `Result` per change (`outcome`), each verified against what Partner Center answered
(`verify`). `engine` is the read-modify-write loop; `session` runs it with progress and Ctrl-C.
"""
