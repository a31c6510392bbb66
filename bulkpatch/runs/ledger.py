"""The ledger of seat changes already applied: seat changes add to what is there, so the same
asks applied again would add seats again. It lives in the user's cache folder and holds only
fingerprints (what was asked of which target) and the run folders that applied them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bulkpatch.errors import InputError
from bulkpatch.settings import cache_dir

LEDGER = "seat-changes-applied.jsonl"


def seat_changes(changes: list[dict[str, Any]], target: str) -> str | None:
    """What a sheet's seat changes (`+2`, `-1`) ask of which target, as a fingerprint: the
    same asks again, from any file, folder or copy of the sheet, are recognised. None: it asks
    none."""
    asked = sorted(
        (c["kind"], c["customer_id"].lower(), c["resource_id"].lower(), c["delta"])
        for c in changes
        if c.get("delta")
    )
    if not asked:
        return None
    return hashlib.sha256(json.dumps([target, asked]).encode()).hexdigest()


def applied_before(printed: str) -> str | None:
    """The run folder that already applied these seat changes, if any (from the user's ledger
    in the cache folder: it holds fingerprints and folders, nothing else)."""
    try:
        lines = (cache_dir() / LEDGER).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    found = [json.loads(line) for line in lines if printed in line]
    return found[-1]["folder"] if found else None


def not_again(source: Path, changes: list[dict[str, Any]], target: str, spelled: str) -> None:
    """Seat changes add to what is there: the same seat changes already applied to the same
    target (from this sheet or a copy of it, from any folder) are not applied again unless
    the user says so. `target` is the place's one name (`target.place_name`); `spelled` the
    target as the run folder keeps it, by which the ledger knew runs before it used names."""
    for name in dict.fromkeys((target, spelled)):
        printed = seat_changes(changes, name)
        earlier = applied_before(printed) if printed else None
        if earlier:
            raise InputError(
                f"{source}: its seat changes were already applied by the run in {earlier}; "
                "applying them again would add those seats again. Pass --add-again if that "
                "is what you want."
            )


def remember_applied(printed: str, folder: Path) -> None:
    """Note in the ledger that `folder` applied these seat changes."""
    ledger = cache_dir() / LEDGER
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"seat_changes": printed, "folder": str(folder.resolve())}) + "\n")
