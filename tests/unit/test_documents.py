"""intake's document inspection on large JPEGs: decoded in draft mode (libjpeg scales by
1/2, 1/4 or 1/8 while decoding), with every check and outcome as a full decode gives.

`full_decode` turns draft mode off (JpegImageFile.draft does nothing), which is how
inspect() decoded before: each photo must get the same outcome both ways, and an
accepted one the same stored size and, within JPEG noise, the same pixels.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat, JpegImagePlugin

from devtools.factories import sha256
from services.intake.documents import LIMITS, Inspected, Kind, inspect
from shared.events import Reason


def textured_jpeg(width: int, height: int, quality: int = 88) -> bytes:
    """A photo-like JPEG: noise, a gradient and a face-sized ellipse (a flat image would
    hide a difference between decodes)."""
    noise = Image.effect_noise((max(1, width // 8), max(1, height // 8)), 50)
    grey = noise.resize((width, height), Image.Resampling.BICUBIC)
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (grey, gradient, ImageChops.invert(grey)))
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 6, 3 * width // 4, height // 2), fill=(224, 188, 160)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


@contextmanager
def full_decode() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda *_a, **_k: None)
        yield


def outcome(result: Inspected | list[Reason]) -> Any:
    if isinstance(result, Inspected):
        return ("accepted", Image.open(io.BytesIO(result.stored)).size)
    return sorted(r.code.value for r in result)


def both_ways(kind: Kind, data: bytes) -> tuple[Inspected | list[Reason], Inspected | list[Reason]]:
    drafted = inspect(kind, data, sha256(data))
    with full_decode():
        full = inspect(kind, data, sha256(data))
    return drafted, full


@pytest.mark.parametrize(
    ("kind", "width", "height", "expected"),
    [
        ("photo", 3024, 4032, ("accepted", (900, 1200))),  # a 12-megapixel phone photo
        ("photo", 2401, 3201, ("accepted", (900, 1200))),
        ("photo", 1500, 2400, ("accepted", (750, 1200))),  # ratio 1.6, the upper limit
        ("photo", 2200, 2420, ("accepted", (1091, 1200))),  # ratio 1.1, the lower limit
        ("photo", 4032, 3024, ["PHOTO_PROPORTIONS"]),  # landscape
        ("photo", 2000, 4000, ["PHOTO_PROPORTIONS"]),  # ratio 2
        ("photo", 1200, 1500, ("accepted", (960, 1200))),  # less than twice stored: no draft
        ("photo", 900, 1200, ("accepted", (900, 1200))),  # the stored size itself
        ("photo", 400, 3200, ["PHOTO_PROPORTIONS", "PHOTO_TOO_SMALL"]),  # too narrow
        ("photo", 7000, 6000, ["PHOTO_TOO_LARGE"]),  # 42 megapixels: never decoded
        ("id_copy", 6000, 4500, ("accepted", (3000, 2250))),
        ("id_copy", 3000, 2000, ("accepted", (3000, 2000))),
    ],
)
def test_a_large_jpeg_gets_the_outcome_a_full_decode_gives(
    kind: Kind, width: int, height: int, expected: Any
) -> None:
    drafted, full = both_ways(kind, textured_jpeg(width, height))
    assert outcome(drafted) == outcome(full) == expected


def test_the_stored_photo_of_a_draft_decode_is_the_same_picture() -> None:
    drafted, full = both_ways("photo", textured_jpeg(3024, 4032))
    assert isinstance(drafted, Inspected) and isinstance(full, Inspected)
    a = Image.open(io.BytesIO(drafted.stored)).convert("RGB")
    b = Image.open(io.BytesIO(full.stored)).convert("RGB")
    assert a.size == b.size == (900, 1200)
    mean_difference = sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3
    assert mean_difference < 2.0  # out of 255: JPEG noise, not another picture


def test_a_large_photo_is_decoded_in_draft_mode_at_no_less_than_its_stored_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.load

    def load(self: JpegImagePlugin.JpegImageFile) -> Any:
        result = original(self)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    data = textured_jpeg(3024, 4032)
    assert isinstance(inspect("photo", data, sha256(data)), Inspected)
    assert decoded[0] == (1512, 2016)  # half size: four times fewer pixels to decode
    assert min(decoded[0]) >= LIMITS.stored_photo_max_side * 3024 // 4032


def test_a_damaged_large_jpeg_is_unreadable_in_draft_mode_too() -> None:
    data = textured_jpeg(3024, 4032)
    drafted, full = both_ways("photo", data[: len(data) // 2])
    assert outcome(drafted) == outcome(full) == ["PHOTO_UNREADABLE"]


def test_the_stored_photo_keeps_no_comment_of_the_upload() -> None:
    """A JPEG comment (COM segment) may hold anything the sender wrote; Pillow writes a
    decoded JPEG's comment back when it saves, unless it is dropped."""
    image = Image.open(io.BytesIO(textured_jpeg(600, 800)))
    out = io.BytesIO()
    image.save(out, "JPEG", comment=b"Kari Nordmann 17059012345")
    data = out.getvalue()
    result = inspect("photo", data, sha256(data))
    assert isinstance(result, Inspected)
    assert b"17059012345" not in result.stored
    assert "comment" not in Image.open(io.BytesIO(result.stored)).info
