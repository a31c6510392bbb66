"""Stage 2, check: every cell against the catalog's rules, then the rules that span rows.

Takes in: a loaded `Sheet`. Hands on: `Checked` (`checker`): each row's outcome (`valid`,
`invalid`, `no_change`) and the issues table (row, column, value, rule, message), bad rows as
data. `values` owns what a cell's value is; `crossrow` the rules across rows. Nothing here
touches the network.
"""
