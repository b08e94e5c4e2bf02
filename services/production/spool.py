"""The print spool: the hot folder a card printer reads, behind a small interface.

`DirectorySpool` writes each card's PDF atomically (a hidden temporary file, fsync, then
a hard link to the final name, so the printer never sees half a file and a second writer
of the same card never replaces or re-announces it) under a name made from the card
number, then appends one JSON line to `manifest.jsonl` (card number, order id, file name,
sha256, size, created). Printers must ignore names starting with a dot.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from services.production.domain import print_file_name

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class PrintJob:
    card_number: str
    order_id: str
    card_type: str
    pdf: bytes


@dataclass(frozen=True)
class SpoolEntry:
    """What the manifest says about one card's print file."""

    card_number: str
    order_id: str
    file: str
    sha256: str


class PrintSpool(Protocol):
    def submit(self, job: PrintJob) -> SpoolEntry:
        """Hand one card to the printer once; raises when it could not."""
        ...

    def find(self, card_number: str, order_id: str, card_type: str) -> SpoolEntry | None:
        """The card's entry when an earlier, interrupted try already handed it over."""
        ...

    def discard_partial(self) -> int:
        """Remove what interrupted tries left half-written; the count removed."""
        ...


class DirectorySpool:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def submit(self, job: PrintJob) -> SpoolEntry:
        """Write the card's file once: a card whose file is already in the spool (another
        instance, or a deposed leader resuming, got there first) is not written again."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = print_file_name(job.card_number)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".tmp-{name}-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(job.pdf)
                out.flush()
                os.fsync(out.fileno())
            # A hard link, not a rename: it fails when the name exists, so of two writers
            # of one card exactly one hands it to the printer and writes its manifest line.
            os.link(tmp, self.root / name)
        except FileExistsError:
            data = (self.root / name).read_bytes()
            return SpoolEntry(job.card_number, job.order_id, name, hashlib.sha256(data).hexdigest())
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._sync_dir()
        entry = SpoolEntry(job.card_number, job.order_id, name, hashlib.sha256(job.pdf).hexdigest())
        self._append(entry, job.card_type, len(job.pdf))
        return entry

    def find(self, card_number: str, order_id: str, card_type: str) -> SpoolEntry | None:
        """From the manifest; or, for a file that was renamed into place just before a
        crash, from the file itself (its manifest line is added now)."""
        for entry in self.entries():
            if entry.card_number == card_number:
                return entry
        path = self.root / print_file_name(card_number)
        if not path.exists():
            return None
        data = path.read_bytes()
        entry = SpoolEntry(card_number, order_id, path.name, hashlib.sha256(data).hexdigest())
        self._append(entry, card_type, len(data))
        return entry

    def discard_partial(self) -> int:
        removed = 0
        for leftover in self.root.glob(".tmp-*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def entries(self) -> list[SpoolEntry]:
        if not self.manifest.exists():
            return []
        found = []
        for line in self.manifest.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                found.append(
                    SpoolEntry(row["card_number"], row["order_id"], row["file"], row["sha256"])
                )
        return found

    def _append(self, entry: SpoolEntry, card_type: str, size: int) -> None:
        line = json.dumps(
            {
                "card_number": entry.card_number,
                "order_id": entry.order_id,
                "file": entry.file,
                "sha256": entry.sha256,
                "bytes": size,
                "card_type": card_type,
                "created": datetime.now(UTC).isoformat(),
            }
        )
        data = (line + "\n").encode()
        # One write(2) with O_APPEND puts the whole line at the end, whoever else appends:
        # no lock, so a writer that hangs (a production leader stopped while it appends)
        # never holds up the one that took over from it.
        fd = os.open(self.manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {self.manifest.name}")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
