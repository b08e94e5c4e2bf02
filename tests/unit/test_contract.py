"""The AsyncAPI document and its Markdown rendering are generated from the models and the
topic list; the committed copies in docs/ must match what the code says now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.contract import asyncapi_document, write
from shared.events import COMMAND_MODELS, EVENT_MODELS
from shared.topics import TOPICS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_committed_contract_documents_are_up_to_date(tmp_path: Path) -> None:
    for generated in write(tmp_path):
        committed = DOCS / generated.name
        assert committed.exists(), f"docs/{generated.name} is missing: run `make schemas`"
        assert committed.read_text() == generated.read_text(), (
            f"docs/{generated.name} is out of date: run `make schemas` and commit it"
        )


def test_every_topic_and_every_model_is_in_the_document() -> None:
    doc = asyncapi_document()
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {t.name for t in TOPICS}
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert set(EVENT_MODELS) | set(COMMAND_MODELS) <= names


def test_every_reference_resolves() -> None:
    doc = asyncapi_document()
    refs = _refs(doc)
    assert refs, "the document has no references at all"
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref


def test_the_document_is_plain_json() -> None:
    doc = asyncapi_document()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["asyncapi"].startswith("3.")
