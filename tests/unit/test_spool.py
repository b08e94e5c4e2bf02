"""The print spool hands each card to the printer once, whoever writes it."""

from __future__ import annotations

import fcntl
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.production.spool import MANIFEST, DirectorySpool, PrintJob


def _job(pdf: bytes) -> PrintJob:
    return PrintJob(card_number="0000000076", order_id="A-1", card_type="construction", pdf=pdf)


def test_a_second_writer_of_a_card_neither_replaces_its_file_nor_announces_it_again(
    tmp_path: Path,
) -> None:
    """A deposed leader that resumes with a card in hand (issue 8's chaos run printed 12
    cards twice this way) finds the card's file there and leaves it and the manifest be."""
    spool = DirectorySpool(tmp_path)
    first = spool.submit(_job(b"%PDF-first"))
    again = spool.submit(_job(b"%PDF-second rendering"))

    assert again == first
    assert (tmp_path / first.file).read_bytes() == b"%PDF-first"
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert [json.loads(line)["card_number"] for line in lines] == ["0000000076"]
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file left behind"


def test_writers_racing_for_one_card_give_one_file_and_one_manifest_line(tmp_path: Path) -> None:
    spool = DirectorySpool(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        entries = list(pool.map(lambda i: spool.submit(_job(b"%PDF-" + bytes([65 + i]))), range(8)))

    assert len({e.sha256 for e in entries}) == 1, "every writer reports the one file written"
    assert len((tmp_path / MANIFEST).read_text().splitlines()) == 1
    assert len(list(tmp_path.glob("HMSKORT-*.pdf"))) == 1


def test_a_writer_that_hangs_holding_the_manifest_never_holds_up_the_next(
    tmp_path: Path,
) -> None:
    """A production leader stopped (SIGSTOP) in the middle of announcing a card must not
    stop the standby that deposed it: the manifest takes no lock a hung writer could keep.
    (Here the hung writer holds an exclusive flock, as the spool's appends once took.)"""
    spool = DirectorySpool(tmp_path)
    (tmp_path / MANIFEST).touch()
    with (tmp_path / MANIFEST).open("a") as hung:
        fcntl.flock(hung, fcntl.LOCK_EX)
        writer = threading.Thread(target=spool.submit, args=(_job(b"%PDF-x"),), daemon=True)
        writer.start()
        writer.join(timeout=5)
        assert not writer.is_alive(), "the next writer waited for the hung one"
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert [json.loads(line)["card_number"] for line in lines] == ["0000000076"]


def test_many_writers_appending_at_once_leave_whole_lines(tmp_path: Path) -> None:
    spool = DirectorySpool(tmp_path)

    def card(i: int) -> PrintJob:
        return PrintJob(f"{i:010d}", f"A-{i}", "construction", b"%PDF-" + str(i).encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: spool.submit(card(i)), range(200)))
    rows = [json.loads(line) for line in (tmp_path / MANIFEST).read_text().splitlines()]
    assert sorted(r["card_number"] for r in rows) == [f"{i:010d}" for i in range(200)]
