"""Documents over HTTP through the real pipeline: our fake document store (deploy.dev
starts it beside the services), real Kafka, real retry topic."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from devtools.factories import submitted
from shared.events import OrderStatusChanged, Status
from shared.reasons import ReasonCode
from shared.topics import ORDER_STATUS
from tests import corpus
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish


def statuses_by_order(records: list[Any]) -> dict[str, list[OrderStatusChanged]]:
    out: dict[str, list[OrderStatusChanged]] = {}
    for r in records:
        out.setdefault(r.key.decode(), []).append(OrderStatusChanged.model_validate_json(r.value))
    return out


def intake_done(ids: set[str]) -> Any:
    """Every order has left intake: accepted, rejected, or needing attention."""
    ends = {Status.ACCEPTED, Status.DOCUMENTS_REJECTED, Status.NEEDS_ATTENTION}
    return lambda found: (
        all(
            any(s.status in ends for s in history)
            for history in statuses_by_order(found[ORDER_STATUS]).values()
        )
        and len(statuses_by_order(found[ORDER_STATUS])) >= len(ids)
    )


async def test_documents_from_the_store_are_checked_and_transient_faults_retry_by_themselves(
    pipeline: Pipeline,
) -> None:
    store = pipeline.profile.docstore_url
    folder = pipeline.profile.state / "docstore"
    folder.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6]

    def doc(name: str, data: bytes) -> dict[str, str]:
        (folder / f"{run}-{name}").write_bytes(data)
        return {"url": f"{store}/docs/{run}-{name}", "sha256": corpus.sha256(data)}

    id_copy = doc("id.pdf", corpus.valid_pdf())
    cases = {
        "ok": doc("ok.jpg", corpus.valid_jpeg()),
        "landscape": doc("landscape.jpg", corpus.landscape_photo()),
        "bomb": doc("bomb.png", corpus.decompression_bomb()),
        "flaky": doc("flaky.jpg", corpus.valid_jpeg()),  # fails twice, then recovers
        "down": doc("down.jpg", corpus.valid_jpeg()),  # never comes back
    }
    async with httpx.AsyncClient(base_url=store) as admin:
        for name, kind, times in ((f"{run}-flaky.jpg", "503", 2), (f"{run}-down.jpg", "500", 99)):
            response = await admin.post(
                "/admin/faults", json={"name": name, "kind": kind, "times": times}
            )
            assert response.status_code == 201, response.text
    orders = {
        case: submitted(f"DOC-{run}-{case}", documents={"photo": photo, "id_copy": id_copy})
        for case, photo in cases.items()
    }
    await publish(pipeline.settings, [(o["order_id"], as_bytes(o)) for o in orders.values()])

    ids = {o["order_id"] for o in orders.values()}
    found = await collect(pipeline.settings, [ORDER_STATUS], ids, intake_done(ids), timeout_s=120)
    history = statuses_by_order(found[ORDER_STATUS])

    def of(case: str) -> list[tuple[Status, list[tuple[ReasonCode, bool]]]]:
        return [
            (s.status, [(r.code, r.retryable) for r in s.reasons])
            for s in history[orders[case]["order_id"]]
            if s.stage == "intake"
        ]

    assert of("ok") == [(Status.RECEIVED, []), (Status.ACCEPTED, [])]
    assert of("landscape")[-1] == (
        Status.DOCUMENTS_REJECTED,
        [(ReasonCode.PHOTO_PROPORTIONS, False)],
    )
    assert of("bomb")[-1] == (Status.DOCUMENTS_REJECTED, [(ReasonCode.PHOTO_TOO_LARGE, False)])
    # Received once with a retryable reason, then accepted once the store answered again.
    assert of("flaky") == [
        (Status.RECEIVED, [(ReasonCode.DOCUMENT_FETCH_FAILED, True)]),
        (Status.ACCEPTED, []),
    ]
    assert of("down")[0] == (Status.RECEIVED, [(ReasonCode.DOCUMENT_FETCH_FAILED, True)])
    assert of("down")[-1] == (Status.NEEDS_ATTENTION, [(ReasonCode.DOCUMENT_FETCH_FAILED, False)])
    async with httpx.AsyncClient(base_url=store) as admin:
        counts = json.loads((await admin.get("/admin/requests")).text)
    assert counts[f"{run}-flaky.jpg"] == 3  # two failures, one success: no extra fetches
