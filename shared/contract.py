"""The contract as a document for the teams that integrate: AsyncAPI, generated from the code.

Every topic of `shared.topics.TOPICS`, its key, its headers and the JSON Schema of each
event and command it carries, in one AsyncAPI 3.0 document (`docs/asyncapi.json`) and the
same rendered as Markdown (`docs/contract.md`) for people. Both are generated from the
event models and the topic list, never written by hand; `make schemas` rewrites them and
a unit test fails when the committed files drift from the models.

    python -m shared.contract [DOCS_DIR]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.delivery import (
    HEADER_ATTEMPT,
    HEADER_DUE_AT,
    HEADER_ERROR,
    HEADER_EVENT_TYPE,
    HEADER_ORIGIN,
    HEADER_STATUS,
)
from shared.events import COMMAND_MODELS, EVENT_MODELS
from shared.reasons import CATALOGUE
from shared.signing import HEADER_KEY_ID, HEADER_SIGNATURE
from shared.topics import (
    CARD_FINDINGS,
    CARD_PRODUCED,
    CARD_STATUS,
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_COMMANDS,
    ORDER_EMAILS,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    SERVICES,
    TOPICS,
    dlt_topic,
    retry_topic,
)

ASYNCAPI_VERSION = "3.0.0"
ORDER_KEY = "the order id (`order_id`), UTF-8: every event of one order on one partition"


@dataclass(frozen=True)
class Channel:
    """What the code cannot tell by itself about a topic: who writes it, who reads it."""

    address: str
    summary: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    messages: tuple[str, ...]  # event types (keys of EVENT_MODELS / COMMAND_MODELS)
    key: str = ORDER_KEY
    headers: tuple[tuple[str, str], ...] = ()


RETRY_HEADERS = (
    (HEADER_ORIGIN, "the topic the message was first consumed from"),
    (HEADER_ATTEMPT, "how many tries have been made (decimal)"),
    (HEADER_DUE_AT, "when the next try is due, epoch milliseconds (decimal)"),
    (HEADER_ERROR, "the reason code of the last failure (optional)"),
)
EVENT_TYPE_HEADER = (
    HEADER_EVENT_TYPE,
    "the event's `event_type`, on every event kortflyt's services publish",
)

CHANNELS: tuple[Channel, ...] = (
    Channel(
        ORDER_SUBMITTED,
        "An order for an HMS-kort, written by the ordering portal. A corrected order is a new"
        " event with the same `order_id` and a higher `revision`.",
        ("internal systems (the ordering portal)",),
        (
            "intake",
            "notify (the employer's contact, for the RECEIVED e-mail)",
            "support (card type, employer org number, birth date only)",
        ),
        ("order.submitted",),
    ),
    Channel(
        ORDER_ACCEPTED,
        "Documents and fields valid: the order goes to the register checks.",
        ("intake",),
        ("registry_check", "verify"),
        ("order.accepted",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        ORDER_APPROVED,
        "Every register check passed (or was overridden by support): the card can be made.",
        ("registry_check",),
        ("production",),
        ("order.approved",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        CARD_PRODUCED,
        "A card was made: its number, issue date and valid-until.",
        ("production",),
        ("notify", "verify", "support", "registry_check", "other internal systems"),
        ("card.produced",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        ORDER_STATUS,
        "Every status change of an order, from the stage that made it. Compacted: the latest"
        " status of every order is kept. Readers drop event ids they have seen (publishing is"
        " at least once).",
        ("intake", "registry_check", "production"),
        ("notify", "support", "intake", "verify", "internal systems"),
        ("order.status",),
        headers=(
            EVENT_TYPE_HEADER,
            (
                HEADER_STATUS,
                "the event's `status`: a reader that acts on a few statuses (intake on the"
                " closed ones, notify on those it mails) passes over the rest by this header"
                " without decoding them; a record without it is judged by its body",
            ),
        ),
    ),
    Channel(
        ORDER_COMMANDS,
        "Support staff's instructions (override, replay, cancel; for cards report_lost,"
        " end_employment, suspend_card, reinstate_card; and dead_letter.redrive, which every"
        " service reads and only the one it names acts on), written by the support service"
        " only; `event_id` is the command id, handled once by the owning service.",
        ("support",),
        ("intake", "registry_check", "production", "notify", "support", "verify"),
        tuple(COMMAND_MODELS),
        headers=(
            (
                HEADER_SIGNATURE,
                "base64 Ed25519 signature over `kortflyt-command-v1\\n` followed by the"
                " record's value (the command as canonical JSON: sorted keys, no spaces);"
                " a command without a valid one is refused and audited",
            ),
            (HEADER_KEY_ID, "the signing key's id (first 16 hex digits of SHA-256 of the raw key)"),
            (
                HEADER_EVENT_TYPE,
                "the command's `event_type`, outside the signature: a service that reads the"
                " topic only for re-drives of its own dead letters passes over every other"
                " record by it, undecoded (the owners of the other commands dead-letter what"
                " is broken)",
            ),
        ),
    ),
    Channel(
        COMMAND_OUTCOMES,
        "What an owning service did with each command it received (its audit row): handled,"
        " ignored or refused, with who, when and why as the command said. Support projects"
        " it for the console. Not compacted: every outcome is kept (a year).",
        ("intake", "registry_check", "production"),
        ("support",),
        ("command.handled",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        ORDER_EMAILS,
        "What came of each e-mail notify sent an employer about an order (sent, refused,"
        " unconfirmed), published with notify's mark of it: which status it told of, its"
        " languages, subject and Message-ID, when, and the address masked (o***@firma.no),"
        " never in full. Support projects it for the order page. Kept a year.",
        ("notify",),
        ("support",),
        ("email.sent",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        CARD_STATUS,
        "Every status change of a produced card (ACTIVE, SUSPENDED, REVOKED, EXPIRED) with its"
        " reasons. Kept for ever: readers can rebuild their projections from the start. An"
        " order's replacement card (report_lost) is a new card number under the same key.",
        ("production",),
        ("notify", "support", "verify", "registry_check", "internal systems"),
        ("card.status",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    Channel(
        CARD_FINDINGS,
        "What registry_check's re-checks of produced cards found (suspend, reinstate, revoke,"
        " with reasons): from Enhetsregisteret's update feed and the scheduled re-checks of"
        " employment and approvals. Production applies them to the card register.",
        ("registry_check",),
        ("production",),
        ("card.finding",),
        headers=(EVENT_TYPE_HEADER,),
    ),
    *(
        Channel(
            retry_topic(service),
            f"{service}'s delayed re-deliveries (non-blocking retries): the original message,"
            " unchanged, with its origin and due time in headers. Internal to the service.",
            (service,),
            (service,),
            (),
            key="the order id, as on the original message",
            headers=RETRY_HEADERS,
        )
        for service in SERVICES
    ),
    *(
        Channel(
            dlt_topic(service),
            f"Messages {service} can never process, with their origin (topic, partition,"
            " offset, key), the error and a redacted preview of the payload (the raw bytes"
            f" stay in {service}'s dead_letters table); support projects them and may"
            " re-drive one (dead_letter.redrive).",
            (service,),
            ("support",),
            (),
            key="the order id when one could be read, else the original key or coordinates",
        )
        for service in SERVICES
    ),
)


def _schemas() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every event and command model's schema, with shared parts under components.schemas."""
    models: dict[str, type[BaseModel]] = {**EVENT_MODELS, **COMMAND_MODELS}
    refs, defs = models_json_schema(
        [(model, "validation") for model in models.values()],
        ref_template="#/components/schemas/{model}",
    )
    by_type = {event_type: refs[(model, "validation")] for event_type, model in models.items()}
    return by_type, defs.get("$defs", {})


def _message_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def asyncapi_document() -> dict[str, Any]:
    payloads, schemas = _schemas()
    configs = {t.name: t for t in TOPICS}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, payload in payloads.items():
        messages[_message_name(event_type)] = {
            "name": event_type,
            "title": event_type,
            "contentType": "application/json",
            "payload": payload,
        }
    for channel in CHANNELS:
        spec = configs[channel.address]
        channel_id = channel.address.removeprefix("hmskort.").replace(".", "_")
        channel_messages: dict[str, Any] = {
            _message_name(m): {"$ref": f"#/components/messages/{_message_name(m)}"}
            for m in channel.messages
        }
        if not channel.messages:  # raw records: the original bytes, or a dead-letter record
            raw = f"{channel_id}_record"
            messages[raw] = {
                "name": raw,
                "contentType": "application/json",
                "payload": {"type": "object", "description": channel.summary},
            }
            channel_messages[raw] = {"$ref": f"#/components/messages/{raw}"}
        for name, ref in channel_messages.items():
            message = messages[ref["$ref"].rsplit("/", 1)[1]]
            message.setdefault("bindings", {"kafka": {"key": {"type": "string"}}})
            if channel.headers:
                message["headers"] = {
                    "type": "object",
                    "properties": {
                        h: {"type": "string", "description": d} for h, d in channel.headers
                    },
                }
            channel_messages[name] = ref
        channels[channel_id] = {
            "address": channel.address,
            "description": (
                f"{channel.summary}\n\nKey: {channel.key}.\n\n"
                f"Producers: {', '.join(channel.producers)}. "
                f"Consumers: {', '.join(channel.consumers)}."
            ),
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": channel.address,
                    "partitions": spec.partitions,
                    "topicConfiguration": dict(sorted(spec.config.items())),
                }
            },
        }
        for action, parties in (("send", channel.producers), ("receive", channel.consumers)):
            operations[f"{action}_{channel_id}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{', '.join(parties)}",
                "messages": [
                    {"$ref": f"#/channels/{channel_id}/messages/{name}"}
                    for name in channel_messages
                ],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "kortflyt",
            "version": "1",
            "description": (
                "The order pipeline for HMS-kort. JSON, UTF-8; every event has `event_id`"
                " (UUID), `event_type`, `occurred_at` (RFC 3339, UTC) and `order_id`; unknown"
                " fields are ignored on read; a breaking change gets a new `.vN` topic."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


# --------------------------------------------------------------------------- Markdown


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "const" in schema:
        return f"`{json.dumps(schema['const'], ensure_ascii=False)}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " or ".join(_type_of(s) for s in schema[combinator])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    if "pattern" in schema:
        return f"{kind} `{schema['pattern']}`"
    return str(kind)


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | default |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = json.dumps(prop["default"], ensure_ascii=False) if "default" in prop else ""
        rows.append(
            f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else ''} | {default} |"
        )
    return rows


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# kortflyt's contract: topics, keys, headers and events",
        "",
        "Generated by `python -m shared.contract` from the event models and the topic list"
        " (`make schemas`); do not edit. The machine-readable form is"
        " [asyncapi.json](asyncapi.json) (AsyncAPI 3.0); the JSON Schema of each event and"
        " command is also in [`schemas/`](../schemas).",
        "",
        doc["info"]["description"],
        "",
        "## Topics",
        "",
    ]
    for channel in doc["channels"].values():
        lines += [f"### `{channel['address']}`", "", channel["description"], ""]
        config = channel["bindings"]["kafka"]
        settings = ", ".join(f"`{k}={v}`" for k, v in config["topicConfiguration"].items())
        lines += [f"Partitions: {config['partitions']}. {settings}".rstrip(), ""]
        names = [ref["$ref"].rsplit("/", 1)[1] for ref in channel["messages"].values()]
        message = doc["components"]["messages"][names[0]]
        if "headers" in message:
            lines += ["| header | meaning |", "|---|---|"]
            lines += [
                f"| `{h}` | {p['description']} |"
                for h, p in message["headers"]["properties"].items()
            ]
            lines.append("")
        events = [doc["components"]["messages"][n]["name"] for n in names]
        if any("$ref" in doc["components"]["messages"][n]["payload"] for n in names):
            lines += ["Messages: " + ", ".join(f"[`{e}`](#{e.replace('.', '')})" for e in events)]
            lines.append("")
    lines += ["## Events and commands", ""]
    schemas = doc["components"]["schemas"]
    for message in doc["components"]["messages"].values():
        ref = message["payload"].get("$ref")
        if ref is None:
            continue
        schema = schemas[ref.rsplit("/", 1)[1]]
        lines += [f"### {message['name']}", ""]
        if schema.get("description"):
            lines += [schema["description"].strip(), ""]
        lines += [*_fields(schema), ""]
    lines += [
        "## Reason codes",
        "",
        "Every reason on `order.status` has a stable code and messages that tell the employer"
        " what to do; `retryable` reasons clear by themselves (kortflyt tries again).",
        "",
        "| code | retryable | bokmål | English |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{code.value}` | {'yes' if text.retryable else ''} | {text.nb} | {text.en} |"
        for code, text in CATALOGUE.items()
    ]
    lines += ["", "## Shared types", ""]
    payload_refs = {
        m["payload"]["$ref"].rsplit("/", 1)[1]
        for m in doc["components"]["messages"].values()
        if "$ref" in m["payload"]
    }
    for name, schema in sorted(schemas.items()):
        if name in payload_refs:
            continue
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [schema["description"].strip(), ""]
        if "properties" in schema:
            lines += [*_fields(schema), ""]
        else:
            lines += [f"{_type_of(schema)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    doc = asyncapi_document()
    api = directory / "asyncapi.json"
    api.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    markdown = directory / "contract.md"
    markdown.write_text(render_markdown(doc))
    return [api, markdown]


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")):
        print(path)  # noqa: T201 - command-line output
