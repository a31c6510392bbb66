"""The network side: where calls go (`target`), how to sign in (`auth`), and one call paced
and retried as documented (`calls`).

Takes in: a target name or URL, a profile's credentials, and settings. Hands on: an
`httpx.AsyncClient` for the target (the embedded sandbox through `httpx.ASGITransport`) and a
`Caller` that every read and write goes through. `check` never imports it.
"""
