"""Stage 3, plan: each valid row becomes a change against one resource, and each change is
held against what Partner Center holds now.

Takes in: `Checked` sheets and, when reading, the resources read. Hands on: `Change`s
(`changes`: absolute targets, the full body to send), and each change's verdict (`assess`:
`change`, `no_change`, `conflict` or `would_fail`, with Partner Center's business rules as
`rules` predicts them).
"""
