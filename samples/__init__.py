"""The sample sheets: the README's first look, and what the built-in sandbox seeds from.

They live at the top of the repository (`samples/`) and install as the package
`bulkpatch.samples` (pyproject.toml maps the folder), so a wheel carries them; code finds
them through `bulkpatch.sandbox.config.SAMPLES`.
"""
