"""The print spool hands each card to the printer once, whoever writes it."""

from __future__ import annotations

import json
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
