"""The sandbox's state in SQLite: resources, changes still pending after a 202, and the
responses already given per MS-RequestId. It survives a restart of the server, and several
processes may share one file (the built-in sandbox's state in the user's cache folder): WAL
lets readers and a writer work at once, and a writer waits for another instead of failing
with "database is locked"."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any

BUSY_SECONDS = 60.0  # how long a write waits for another process's write to finish

SCHEMA = """
create table if not exists resources (
    kind text, customer_id text, id text, body text, pending text, visible_at real,
    primary key (kind, customer_id, id));
create table if not exists replies (
    request_id text primary key, status integer, body text, location text);
"""


class Store:
    """Resources keyed by (kind, customer id, resource id); ids compare case-insensitively."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(
            path, timeout=BUSY_SECONDS, check_same_thread=False, isolation_level=None
        )
        self.db.execute(f"pragma busy_timeout={int(BUSY_SECONDS * 1000)}")
        self._prepare()
        self.db.execute("pragma synchronous=normal")
        self.lock = threading.Lock()

    def _prepare(self) -> None:
        """WAL and the tables. Two processes opening a new file at once can meet SQLite's
        "database is locked" without its busy wait (switching the journal mode takes the file
        alone), so the first steps are tried again for a while, then the error stands."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                self.db.execute("pragma journal_mode=wal")
                self.db.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def clear(self) -> None:
        with self.lock:
            self.db.executescript("delete from resources; delete from replies;")

    def put_many(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Insert or replace resources: (customer id, body) pairs, the body holding `id`."""
        self._insert("insert or replace", kind, items)

    def add_new(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Insert the resources the store does not hold yet; one it holds keeps its state
        (what earlier runs made of it). Of the same id twice in `items`, the last counts."""
        unique = {(c.lower(), b["id"].lower()): (c, b) for c, b in items}
        self._insert("insert or ignore", kind, list(unique.values()))

    def _insert(self, verb: str, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        rows = [(kind, c.lower(), b["id"].lower(), json.dumps(b), None, None) for c, b in items]
        with self.lock:
            self.db.execute("begin immediate")  # one transaction: waits for another writer
            try:
                self.db.executemany(f"{verb} into resources values (?,?,?,?,?,?)", rows)
            except BaseException:
                self.db.execute("rollback")
                raise
            self.db.execute("commit")

    def get(self, kind: str, customer_id: str, rid: str, now: float) -> dict[str, Any] | None:
        """The resource as a reader sees it now (a pending change shows once it is visible)."""
        with self.lock:
            row = self.db.execute(
                "select body, pending, visible_at from resources where kind=? and customer_id=? "
                "and id=?",
                (kind, customer_id.lower(), rid.lower()),
            ).fetchone()
            if row is None:
                return None
            body, pending, visible_at = row
            if pending is not None and visible_at <= now:
                self._write(kind, customer_id, rid, pending, None, None)
                body = pending
            return json.loads(body)

    def list(self, kind: str, customer_id: str, now: float) -> list[dict[str, Any]] | None:
        """Every resource of a customer, or None when the customer is unknown."""
        with self.lock:
            ids = [
                r[0]
                for r in self.db.execute(
                    "select id from resources where kind=? and customer_id=? order by id",
                    (kind, customer_id.lower()),
                )
            ]
        items = [self.get(kind, customer_id, i, now) for i in ids]
        return [i for i in items if i is not None] if ids else None

    def save(
        self, kind: str, customer_id: str, body: dict[str, Any], visible_at: float | None = None
    ) -> None:
        """Write a new state now, or (with `visible_at`) as a change readers see later."""
        text = json.dumps(body)
        with self.lock:
            if visible_at is None:
                self._write(kind, customer_id, body["id"], text, None, None)
            else:
                self.db.execute(
                    "update resources set pending=?, visible_at=? where kind=? and customer_id=? "
                    "and id=?",
                    (text, visible_at, kind, customer_id.lower(), body["id"].lower()),
                )

    def _write(
        self,
        kind: str,
        customer_id: str,
        rid: str,
        body: str,
        pending: str | None,
        visible_at: float | None,
    ) -> None:
        self.db.execute(
            "update resources set body=?, pending=?, visible_at=? where kind=? and customer_id=? "
            "and id=?",
            (body, pending, visible_at, kind, customer_id.lower(), rid.lower()),
        )

    def reply(self, request_id: str) -> tuple[int, str, str | None] | None:
        """The response already given to `request_id`, if any."""
        with self.lock:
            return self.db.execute(
                "select status, body, location from replies where request_id=?", (request_id,)
            ).fetchone()

    def remember(self, request_id: str, status: int, body: str, location: str | None) -> None:
        with self.lock:
            self.db.execute(
                "insert or replace into replies values (?,?,?,?)",
                (request_id, status, body, location),
            )

    def profiles(self) -> dict[str, dict[str, Any]]:
        """The Customer resources seeded with names (kind `customers`), by customer id."""
        with self.lock:
            rows = self.db.execute("select customer_id, body from resources where kind='customers'")
            return {r[0]: json.loads(r[1]) for r in rows}

    def customers(self) -> list[str]:
        """Every customer the sandbox holds a resource for, in id order (the customer list)."""
        with self.lock:
            rows = self.db.execute("select distinct customer_id from resources order by 1")
            return [r[0] for r in rows]
