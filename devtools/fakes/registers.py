"""One fake server for all five registers, with fault injection and an admin API.

    python -m devtools.fakes.registers [--host 127.0.0.1] [--port 8080] [--seed FILE]
        [--maskinporten-public-key PEM --maskinporten-audience URL]

Serves a data set (`devtools.fakes.register_data`; the default seed without `--seed`):

    GET /enhetsregisteret/api/enheter/{orgnr}             200 | 404 | 410 Gone (deleted)
    GET /enhetsregisteret/api/underenheter/{orgnr}        200 | 404 | 410 Gone (deleted)
    GET /enhetsregisteret/api/enheter/{orgnr}/roller      200 | 404
    GET /enhetsregisteret/api/oppdateringer/enheter       the update feed of main units
    GET /enhetsregisteret/api/oppdateringer/underenheter  and of sub-units: ?oppdateringsid=
        (from and including) or ?dato= (from that time), &size= (default 20), &page=; a HAL
        page of `_embedded.oppdaterteEnheter` / `oppdaterteUnderenheter` entries
        {oppdateringsid, dato, organisasjonsnummer, endringstype, _links} and `page`
    GET /renholdsregisteret/api/virksomheter/{orgnr}      200 | 404
    GET /bemanningsforetaksregisteret/api/virksomheter/{orgnr}
    GET /aaregisteret/api/v2/arbeidstaker/arbeidsforhold  header Nav-Personident; 200 list | 404
    GET /folkeregisteret/api/v1/personer/{id}             200 | 404

With a Maskinporten public key, it is also Maskinporten: `POST /maskinporten/token`
(grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT) checks the client
assertion (RS256 signature with that key, `aud`, `exp`, `iat`, a `jti` not seen before,
`scope`) and issues an access token for the scope; Aa-registeret and Folkeregisteret
(the non-public registers, scopes as `Settings.maskinporten_scopes`) then answer 401
without a valid, unexpired token for their scope. Enhetsregisteret stays open.

Admin API ("the register has been corrected", faults on demand):

    PUT    /_admin/records/{collection}/{key}   body: the record      replace one record
    DELETE /_admin/records/{collection}/{key}                         remove it
    POST   /_admin/records   {"collection": {"key": record | null}}   many at once (null removes)
    POST   /_admin/updates   {"enheter" | "underenheter": [orgnr, ...], "endringstype": "Endring"}
                             feed entries without a change of data (a bench's day of changes)
    POST   /_admin/faults    {"register": "aaregisteret" | "*", "key": "...", "fraction": 0.1,
                              "kind": "latency" | "timeout" | "error" | "outage" | "garbage",
                              "latency_s": 2.0, "status": 503, "times": 3}
    DELETE /_admin/faults                                             clear every fault
    GET    /_admin/stats     requests served per register
    GET    /_admin/health

A fault applies to one record (`key`), to a deterministic share of records (`fraction`,
by a hash of the key) or to the whole register, optionally only `times` times; the update
feeds are Enhetsregisteret's, keyed `oppdateringer/enheter` and `oppdateringer/underenheter`.

Every change the admin API makes to a unit (`enheter`, `slettede` for main units,
`underenheter`, `slettede_underenheter` for sub-units) appears in the update feed as the
real register publishes it: `Ny` for a new unit, `Endring` for a changed one (bankrupt, under
avvikling, back to normal), `Sletting` when it is deleted (410 Gone from then on), `Fjernet`
when it is removed altogether. The seed itself is the register before the feed begins.
Update ids start at the time in milliseconds, so they only grow, across restarts too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from devtools.fakes.register_data import COLLECTIONS, default_seed
from services.registry_check.settings import RegistryCheckSettings

PERSON_HEADER = "Nav-Personident"
REGISTERS = (
    "enhetsregisteret",
    "renholdsregisteret",
    "bemanningsforetaksregisteret",
    "aaregisteret",
    "folkeregisteret",
)
FAULT_KINDS = ("latency", "timeout", "error", "outage", "garbage")
# The collections whose changes appear in an update feed: (feed, a record here means deleted).
FEED_OF = {
    "enheter": ("enheter", False),
    "slettede": ("enheter", True),
    "underenheter": ("underenheter", False),
    "slettede_underenheter": ("underenheter", True),
}
FEED_KEYS = {"enheter": "oppdaterteEnheter", "underenheter": "oppdaterteUnderenheter"}
FEED_LINKS = {"enheter": "enhet", "underenheter": "underenhet"}
BRREG = "https://data.brreg.no/enhetsregisteret/api"


@dataclass
class Fault:
    register: str
    kind: str
    key: str | None = None
    fraction: float | None = None
    latency_s: float = 2.0
    status: int = 500
    times: int | None = None

    def matches(self, register: str, key: str) -> bool:
        if self.register not in ("*", register):
            return False
        if self.key is not None:
            return self.key == key
        if self.fraction is not None:
            bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            return bucket < self.fraction
        return True


def _fault_of(data: Any) -> Fault:
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="a fault is a JSON object")
    register, kind = data.get("register"), data.get("kind")
    if register not in (*REGISTERS, "*") or kind not in FAULT_KINDS:
        raise web.HTTPBadRequest(text=f"register in {REGISTERS} or '*', kind in {FAULT_KINDS}")
    return Fault(
        register=register,
        kind=kind,
        key=data.get("key"),
        fraction=data.get("fraction"),
        latency_s=float(data.get("latency_s", 30.0 if kind == "timeout" else 2.0)),
        status=int(data.get("status", 503 if kind == "outage" else 500)),
        times=data.get("times"),
    )


class FakeMaskinporten:
    """Maskinporten's token endpoint: checks client assertions, issues access tokens."""

    def __init__(
        self,
        public_key_pem: bytes,
        audience: str,
        scopes: dict[str, str] | None = None,
        token_lifetime_s: int = 120,
    ) -> None:
        self.public_key_pem = public_key_pem
        self.audience = audience
        # register -> the scope its token must have (the registers that are not open)
        self.scopes = (
            scopes if scopes is not None else dict(RegistryCheckSettings().maskinporten_scopes)
        )
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (scope, expires at)
        self.seen_jti: set[str] = set()
        self.issued: Counter[str] = Counter()  # tokens issued per scope
        self.refused: Counter[str] = Counter()  # assertions and calls refused, by why

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._error("unsupported_grant_type")
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            return self._error("invalid_request")
        try:
            claims = jwt.decode(
                assertion,
                self.public_key_pem,
                algorithms=["RS256"],
                audience=self.audience,
                options={"require": ["iss", "aud", "exp", "iat", "jti", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return self._error("invalid_grant", type(exc).__name__)
        if claims["jti"] in self.seen_jti:
            return self._error("invalid_grant", "jti reused")
        self.seen_jti.add(claims["jti"])
        scope = str(claims["scope"])
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (scope, time.time() + self.token_lifetime_s)
        self.issued[scope] += 1
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_s,
                "scope": scope,
            }
        )

    def _error(self, error: str, why: str = "") -> web.Response:
        self.refused[error] += 1
        return web.json_response({"error": error, "error_description": why}, status=400)

    def allows(self, register: str, authorization: str) -> bool:
        scope = self.scopes.get(register)
        if not scope:
            return True  # an open register
        token = authorization.removeprefix("Bearer ")
        granted = self.tokens.get(token)
        if granted is None or granted[0] != scope or granted[1] < time.time():
            self.refused[f"call:{register}"] += 1
            return False
        return True


class FakeRegisters:
    def __init__(
        self, data: dict[str, dict[str, Any]], maskinporten: FakeMaskinporten | None = None
    ) -> None:
        self.data = {c: dict(data.get(c, {})) for c in COLLECTIONS}
        # The update feeds (oldest first) and the next oppdateringsid of each. The real
        # register's ids only grow; so do these across restarts of the fake (they start at
        # the time in milliseconds), or a follower that kept its place would wait for ever.
        self.updates: dict[str, list[dict[str, Any]]] = {f: [] for f in FEED_KEYS}
        self._next_update = dict.fromkeys(FEED_KEYS, time.time_ns() // 1_000_000)
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.maskinporten = maskinporten

    # ------------------------------------------------------------------ faults

    async def _inject(self, register: str, key: str) -> web.Response | None:
        """Apply the first matching fault: a response to send instead, or None to go on."""
        self.requests[register] += 1
        for fault in self.faults:
            if not fault.matches(register, key):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            if fault.kind in ("latency", "timeout"):
                await asyncio.sleep(fault.latency_s)
                if fault.kind == "timeout":
                    return web.Response(status=504, text="gateway timeout")
                return None
            if fault.kind == "garbage":
                return web.Response(status=200, text="<html>maintenance</html>")
            return web.json_response({"feilmelding": "fake fault"}, status=fault.status)
        return None

    def _route(
        self, register: str, key_of: Callable[[web.Request], str]
    ) -> Callable[
        [Callable[[web.Request, str], Awaitable[web.StreamResponse]]],
        Callable[[web.Request], Awaitable[web.StreamResponse]],
    ]:
        def wrap(
            handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]],
        ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            async def serve(request: web.Request) -> web.StreamResponse:
                mp = self.maskinporten
                if mp is not None and not mp.allows(
                    register, request.headers.get("Authorization", "")
                ):
                    return web.json_response(
                        {"kode": "401", "melding": "Autentiseringsinformasjon mangler"}, status=401
                    )
                key = key_of(request)
                injected = await self._inject(register, key)
                if injected is not None:
                    return injected
                return await handler(request, key)

            return serve

        return wrap

    def _record(self, collection: str, key: str) -> web.Response:
        record = self.data[collection].get(key)
        if record is None:
            return web.json_response({"feilmelding": "ikke funnet"}, status=404)
        return web.json_response(record)

    # ------------------------------------------------------------------ update feeds

    def publish(self, feed: str, org: str, change: str) -> dict[str, Any]:
        """Append one entry to an update feed, in the real register's shape."""
        entry = {
            "oppdateringsid": self._next_update[feed],
            "dato": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "organisasjonsnummer": org,
            "endringstype": change,
            "_links": {FEED_LINKS[feed]: {"href": f"{BRREG}/{feed}/{org}"}},
        }
        self._next_update[feed] += 1
        self.updates[feed].append(entry)
        return entry

    def _exists(self, feed: str, org: str) -> bool:
        return any(org in self.data[c] for c, (f, _d) in FEED_OF.items() if f == feed)

    def _write(self, collection: str, key: str, record: Any) -> None:
        """Write (None: remove) one record; a unit's change goes to its update feed."""
        target = self.data[collection]
        if collection not in FEED_OF:
            if record is None:
                target.pop(key, None)
            else:
                target[key] = record
            return
        feed, deleted = FEED_OF[collection]
        existed = self._exists(feed, key)
        if record is None:  # removed
            if target.pop(key, None) is None:
                return
            # No longer deleted (its record is back), or gone from the register altogether.
            change = "Endring" if self._exists(feed, key) else "Fjernet"
        else:
            target[key] = record
            change = "Sletting" if deleted else ("Endring" if existed else "Ny")
        self.publish(feed, key, change)

    async def feed(self, request: web.Request, feed: str) -> web.Response:
        """`/oppdateringer/{feed}`: entries from `oppdateringsid` (inclusive) or `dato` on."""
        query = request.query
        try:
            from_id = int(query.get("oppdateringsid", "0"))
            since = (
                datetime.fromisoformat(query["dato"].replace("Z", "+00:00"))
                if "dato" in query
                else None
            )
            size = min(max(int(query.get("size", "20")), 1), 10000)
            page = max(int(query.get("page", "0")), 0)
        except ValueError:
            return web.json_response({"feilmelding": "ugyldig parameter"}, status=400)
        entries = [
            e
            for e in self.updates[feed]
            if e["oppdateringsid"] >= from_id
            and (since is None or datetime.fromisoformat(e["dato"].replace("Z", "+00:00")) >= since)
        ]
        chunk = entries[page * size : (page + 1) * size]
        total_pages = (len(entries) + size - 1) // size
        body: dict[str, Any] = {
            "_links": {"self": {"href": str(request.url)}},
            "page": {
                "size": size,
                "totalElements": len(entries),
                "totalPages": total_pages,
                "number": page,
            },
        }
        if chunk:  # HAL leaves _embedded out of an empty page, as the real API does
            body["_embedded"] = {FEED_KEYS[feed]: chunk}
        return web.json_response(body)

    async def add_updates(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"enheter": [orgnr, ...], "endringstype": "Endring"}')
        change = str(body.get("endringstype", "Endring"))
        added = 0
        for feed in FEED_KEYS:
            for org in body.get(feed, []):
                self.publish(feed, str(org), change)
                added += 1
        return web.json_response({"added": added})

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        # A test loads thousands of records at once through the admin API.
        app = web.Application(client_max_size=256 * 1024 * 1024)
        org = self._route("enhetsregisteret", lambda r: r.match_info["org"])

        @org
        async def enheter(_r: web.Request, key: str) -> web.StreamResponse:
            if key in self.data["slettede"]:
                return web.json_response(self.data["slettede"][key], status=410)
            return self._record("enheter", key)

        @org
        async def underenheter(_r: web.Request, key: str) -> web.StreamResponse:
            if key in self.data["slettede_underenheter"]:
                return web.json_response(self.data["slettede_underenheter"][key], status=410)
            return self._record("underenheter", key)

        @org
        async def roller(_r: web.Request, key: str) -> web.StreamResponse:
            return self._record("roller", key)

        feed_route = self._route(
            "enhetsregisteret", lambda r: f"oppdateringer/{r.match_info['feed']}"
        )

        @feed_route
        async def oppdateringer(request: web.Request, _key: str) -> web.StreamResponse:
            feed = request.match_info["feed"]
            if feed not in FEED_KEYS:
                return web.json_response({"feilmelding": "ikke funnet"}, status=404)
            return await self.feed(request, feed)

        @self._route("renholdsregisteret", lambda r: r.match_info["org"])
        async def renhold(_r: web.Request, key: str) -> web.StreamResponse:
            return self._record("renhold", key)

        @self._route("bemanningsforetaksregisteret", lambda r: r.match_info["org"])
        async def bemanning(_r: web.Request, key: str) -> web.StreamResponse:
            return self._record("bemanning", key)

        def person_key(request: web.Request) -> str:
            return request.headers.get(PERSON_HEADER, "")

        @self._route("aaregisteret", person_key)
        async def arbeidsforhold(_r: web.Request, key: str) -> web.StreamResponse:
            return self._record("arbeidsforhold", key)

        @self._route("folkeregisteret", lambda r: r.match_info["nid"])
        async def personer(_r: web.Request, key: str) -> web.StreamResponse:
            return self._record("personer", key)

        app.router.add_get("/enhetsregisteret/api/enheter/{org}", enheter)
        app.router.add_get("/enhetsregisteret/api/underenheter/{org}", underenheter)
        app.router.add_get("/enhetsregisteret/api/enheter/{org}/roller", roller)
        app.router.add_get("/enhetsregisteret/api/oppdateringer/{feed}", oppdateringer)
        app.router.add_get("/renholdsregisteret/api/virksomheter/{org}", renhold)
        app.router.add_get("/bemanningsforetaksregisteret/api/virksomheter/{org}", bemanning)
        app.router.add_get("/aaregisteret/api/v2/arbeidstaker/arbeidsforhold", arbeidsforhold)
        app.router.add_get("/folkeregisteret/api/v1/personer/{nid}", personer)
        if self.maskinporten is not None:
            app.router.add_post("/maskinporten/token", self.maskinporten.token)

        app.router.add_put("/_admin/records/{collection}/{key}", self.put_record)
        app.router.add_delete("/_admin/records/{collection}/{key}", self.delete_record)
        app.router.add_post("/_admin/records", self.put_records)
        app.router.add_post("/_admin/updates", self.add_updates)
        app.router.add_post("/_admin/faults", self.add_fault)
        app.router.add_delete("/_admin/faults", self.clear_faults)
        app.router.add_get("/_admin/stats", self.stats)
        app.router.add_get("/_admin/health", self.health)
        return app

    # ------------------------------------------------------------------ admin

    def _collection(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise web.HTTPNotFound(text=f"collections: {', '.join(COLLECTIONS)}")
        return self.data[name]

    async def put_record(self, request: web.Request) -> web.Response:
        name = request.match_info["collection"]
        self._collection(name)
        self._write(name, request.match_info["key"], await request.json())
        return web.json_response({"ok": True})

    async def delete_record(self, request: web.Request) -> web.Response:
        name, key = request.match_info["collection"], request.match_info["key"]
        removed = key in self._collection(name)
        self._write(name, key, None)
        return web.json_response({"removed": removed})

    async def put_records(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="{collection: {key: record | null}}")
        changed = 0
        for name, records in body.items():
            self._collection(name)
            for key, record in records.items():
                self._write(name, key, record)
                changed += 1
        return web.json_response({"changed": changed})

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = _fault_of(await request.json())
        self.faults.append(fault)
        return web.json_response({"faults": len(self.faults)})

    async def clear_faults(self, _request: web.Request) -> web.Response:
        cleared = len(self.faults)
        self.faults.clear()
        return web.json_response({"cleared": cleared})

    async def stats(self, _request: web.Request) -> web.Response:
        mp = self.maskinporten
        return web.json_response(
            {
                "requests": dict(self.requests),
                "faults": len(self.faults),
                "tokens_issued": dict(mp.issued) if mp else {},
                "refused": dict(mp.refused) if mp else {},
            }
        )

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


class Admin:
    """The admin API from a test: load records, correct them, inject and clear faults."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as client:
            response = await client.request(method, path, json=body)
            response.raise_for_status()
            return response.json()

    async def load(self, data: dict[str, dict[str, Any]]) -> None:
        await self._call("POST", "/_admin/records", data)

    async def put(self, collection: str, key: str, record: Any) -> None:
        await self._call("PUT", f"/_admin/records/{collection}/{key}", record)

    async def delete(self, collection: str, key: str) -> None:
        await self._call("DELETE", f"/_admin/records/{collection}/{key}")

    async def fault(self, register: str, kind: str, **options: Any) -> None:
        await self._call("POST", "/_admin/faults", {"register": register, "kind": kind, **options})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/_admin/faults")

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/_admin/stats")
        return result

    async def updates(self, feed: str, orgs: list[str], change: str = "Endring") -> None:
        """Feed entries without a change of data (as many as a day brings)."""
        await self._call("POST", "/_admin/updates", {feed: orgs, "endringstype": change})


def load_seed(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return default_seed().to_json()
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: a seed is a JSON object of collections")
    return data


async def serve(
    host: str, port: int, seed: Path | None, mp_key: bytes | None, mp_audience: str | None
) -> None:
    maskinporten = None
    if mp_key is not None:
        audience = mp_audience or f"http://{host}:{port}/maskinporten/"
        maskinporten = FakeMaskinporten(mp_key, audience)
    fake = FakeRegisters(load_seed(seed), maskinporten)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"fake registers on http://{host}:{port}", flush=True)  # noqa: T201
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container's fake
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--seed", type=Path, default=None)
    parser.add_argument("--maskinporten-public-key", type=Path, default=None)
    parser.add_argument("--maskinporten-audience", default=None)
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            args.host,
            args.port,
            args.seed,
            args.maskinporten_public_key.read_bytes() if args.maskinporten_public_key else None,
            args.maskinporten_audience,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
