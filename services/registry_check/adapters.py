"""The five registers behind one small interface each, and their HTTP adapters.

Each adapter is configured by a base URL, its credentials (a Maskinporten access token for
the non-public registers, `services.registry_check.maskinporten`; a bearer token from
settings as a fallback) and a timeout, and turns the register's JSON into the domain's
values. A register that times out, cannot be reached, answers 5xx (or 429, 401/403, or JSON
we cannot read) raises `RegisterUnavailable`: the stage retries it, it never becomes a
rejection. 404 means "not in the register", a rule's input.

The shapes are the registers' own:
- Enhetsregisteret: the open API of data.brreg.no (`/enheter/{orgnr}`,
  `/underenheter/{orgnr}` with `overordnetEnhet` and `nedleggelsesdato`,
  `/enheter/{orgnr}/roller`; 410 Gone for a deleted unit), and its update feeds
  `/oppdateringer/enheter` and `/oppdateringer/underenheter` (`?oppdateringsid=` from and
  including that id, or `?dato=` from that time; `size`): HAL pages whose `_embedded`
  `oppdaterteEnheter` / `oppdaterteUnderenheter` list `{oppdateringsid, dato,
  organisasjonsnummer, endringstype: Ny | Endring | Sletting | Fjernet | Ukjent, _links}`.
- Aa-registeret: NAV's REST API v2, `GET /v2/arbeidstaker/arbeidsforhold` with the person in
  the `Nav-Personident` header; each arbeidsforhold has `arbeidssted` and
  `opplysningspliktig` ({type: Underenhet | Hovedenhet | Person, identer: [{type:
  ORGANISASJONSNUMMER | AKTORID | FOLKEREGISTERIDENT, ident, gjeldende}]}) and
  `ansettelsesperiode` {startdato, sluttdato} (as NAV's own clients read it, e.g.
  navikt's sykmeldinger-arbeidsforhold: `Arbeidssted(type: Underenhet|Person, identer)`,
  `Ident(type, ident, gjeldende)`). An employer that is a person has no organisation
  number: that employment is skipped, as is any entry we cannot read.
- Folkeregisteret: Skatteetaten's person lookup, `GET /v1/personer/{folkeregisteridentifikator}`
  (github.com/Skatteetaten/folkeregisteret-api-dokumentasjon, "Oppslag" and
  "Informasjonsfelter og statuskoder"): `identifikasjonsnummer` [{foedselsEllerDNummer,
  identifikatortype: foedselsnummer | dNummer, status: iBruk | opphoert, erGjeldende}],
  `navn` [{fornavn, mellomnavn, etternavn}], `foedsel` [{foedselsdato}], `status`
  [{status: bosatt | utflyttet | doed | opphoert | inaktiv | midlertidig | ...}],
  `doedsfall` [{doedsdato}]. The id is in the path as the API has it; aiohttp logs no
  request (the stdlib root logger is at WARNING), so it reaches no log.
- Renholdsregisteret and Bemanningsforetaksregisteret: `/virksomheter/{orgnr}` with a
  `status` ("Godkjent med ansatte", "Søknad under behandling", ... or their codes).

The calls go through aiohttp: measured here (`tests/bench_http.py`), a GET costs a fourth
to a tenth of the CPU it cost through httpx, whose pool and parser took more than half of
the service's CPU in the pipeline (py-spy). As httpx did, it honours HTTP(S)_PROXY and
NO_PROXY from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from services.registry_check.domain import (
    CleaningStatus,
    EmploymentRecord,
    Person,
    PersonName,
    Register,
    Role,
    StaffingStatus,
    Unit,
    name_tokens,
)
from services.registry_check.maskinporten import Maskinporten, TokenUnavailable
from services.registry_check.settings import RegistryCheckSettings
from shared.logging import get_logger
from shared.metrics import external_call

log = get_logger(__name__)

PERSON_HEADER = "Nav-Personident"
_W = TypeVar("_W", bound="_Wire")


class RegisterUnavailable(Exception):
    """The register gave no usable answer now; try again later."""

    def __init__(self, register: Register, why: str) -> None:
        super().__init__(f"{register.value}: {why}")
        self.register = register
        self.why = why


# --------------------------------------------------------------------------- ports


class Enhetsregisteret(Protocol):
    async def unit(self, org_number: str) -> Unit | None:
        """A main unit or, failing that, a sub-unit; None when neither exists."""

    async def main_unit(self, org_number: str) -> Unit | None: ...

    async def roles(self, org_number: str) -> list[Role]: ...


@dataclass(frozen=True)
class UnitUpdate:
    """One entry of Enhetsregisteret's update feed: a unit changed (or was deleted)."""

    update_id: int  # oppdateringsid: sequential over the feed
    org_number: str
    change: str  # endringstype: Ny, Endring, Sletting, Fjernet (or Ukjent)
    at: datetime | None = None  # dato: when the change was published


FeedKind = Literal["enheter", "underenheter"]


class UnitUpdates(Protocol):
    async def updates(
        self, kind: FeedKind, from_id: int | None, since: datetime, size: int
    ) -> list[UnitUpdate]:
        """Up to `size` changes of main units (`enheter`) or sub-units, in feed order:
        from update `from_id` on (inclusive), or from the time `since` when there is none."""
        ...


class Renholdsregisteret(Protocol):
    async def status(self, org_number: str) -> CleaningStatus | None: ...


class Bemanningsforetaksregisteret(Protocol):
    async def status(self, org_number: str) -> StaffingStatus | None: ...


class AaRegisteret(Protocol):
    async def employments(self, national_id: str) -> list[EmploymentRecord]: ...


class Folkeregisteret(Protocol):
    async def person(self, national_id: str) -> Person | None: ...


@dataclass(frozen=True)
class Registers:
    enhetsregisteret: Enhetsregisteret
    renholdsregisteret: Renholdsregisteret
    bemanningsforetaksregisteret: Bemanningsforetaksregisteret
    aaregisteret: AaRegisteret
    folkeregisteret: Folkeregisteret


# --------------------------------------------------------------------------- wire shapes


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Code(_Wire):
    kode: str


class _Enhet(_Wire):
    organisasjonsnummer: str
    navn: str = ""
    organisasjonsform: _Code | None = None
    overordnetEnhet: str | None = None
    slettedato: date | None = None
    nedleggelsesdato: date | None = None
    konkurs: bool = False
    underAvvikling: bool = False
    underTvangsavviklingEllerTvangsopplosning: bool = False
    registrertIMvaregisteret: bool = False
    naeringskode1: _Code | None = None

    def unit(self) -> Unit:
        return Unit(
            org_number=self.organisasjonsnummer,
            org_form=self.organisasjonsform.kode if self.organisasjonsform else "",
            parent=self.overordnetEnhet,
            deleted_on=self.slettedato,
            name=self.navn,
            closed_on=self.nedleggelsesdato,
            bankrupt=self.konkurs,
            winding_up=self.underAvvikling,
            compulsory_dissolution=self.underTvangsavviklingEllerTvangsopplosning,
            vat_registered=self.registrertIMvaregisteret,
            nace=self.naeringskode1.kode if self.naeringskode1 else None,
        )


class _Gone(_Wire):
    organisasjonsnummer: str
    slettedato: date | None = None
    overordnetEnhet: str | None = None  # when the register still says it


class _Navn(_Wire):
    fornavn: str = ""
    mellomnavn: str | None = None
    etternavn: str = ""

    def name(self) -> PersonName:
        return PersonName(self.fornavn, self.etternavn, self.mellomnavn or "")


class _RollePerson(_Wire):
    fodselsdato: date | None = None
    navn: _Navn | None = None


class _Rolle(_Wire):
    type: _Code
    person: _RollePerson | None = None
    fratraadt: bool = False


class _Rollegruppe(_Wire):
    roller: list[_Rolle] = []


class _Roller(_Wire):
    rollegrupper: list[_Rollegruppe] = []


class _Oppdatering(_Wire):
    oppdateringsid: int
    organisasjonsnummer: str
    endringstype: str = "Ukjent"
    dato: datetime | None = None


class _Virksomhet(_Wire):
    organisasjonsnummer: str
    status: str


class _Periode(_Wire):
    startdato: date
    sluttdato: date | None = None


class _Ident(_Wire):
    type: str  # ORGANISASJONSNUMMER, AKTORID or FOLKEREGISTERIDENT
    ident: str
    gjeldende: bool | None = None


class _Part(_Wire):
    """`arbeidssted` or `opplysningspliktig`: a unit, or a person as employer."""

    type: str  # Underenhet, Hovedenhet or Person
    identer: list[_Ident] = []

    def org_number(self) -> str | None:
        return next((i.ident for i in self.identer if i.type == "ORGANISASJONSNUMMER"), None)


class _Arbeidsforhold(_Wire):
    arbeidssted: _Part
    opplysningspliktig: _Part | None = None
    ansettelsesperiode: _Periode


class _Identifikasjonsnummer(_Wire):
    foedselsEllerDNummer: str
    identifikatortype: str  # foedselsnummer or dNummer
    status: str = "iBruk"  # iBruk or opphoert
    erGjeldende: bool = True


class _FregNavn(_Wire):
    fornavn: str = ""
    mellomnavn: str | None = None
    etternavn: str = ""
    erGjeldende: bool = True


class _Foedsel(_Wire):
    foedselsdato: date | None = None
    erGjeldende: bool = True


class _Personstatus(_Wire):
    status: str
    erGjeldende: bool = True


class _Doedsfall(_Wire):
    doedsdato: date | None = None


class _FregPerson(_Wire):
    identifikasjonsnummer: list[_Identifikasjonsnummer] = []
    navn: list[_FregNavn] = []
    foedsel: list[_Foedsel] = []
    status: list[_Personstatus] = []
    doedsfall: list[_Doedsfall] = []


_G = TypeVar("_G", _FregNavn, _Foedsel, _Personstatus)


def _current(items: list[_G]) -> _G | None:
    """The entry in force (erGjeldende), else the first."""
    return next((i for i in items if i.erGjeldende), items[0] if items else None)


def _status_key(raw: str) -> str:
    """ "Søknad under behandling" and SOKNAD_UNDER_BEHANDLING are one status."""
    return "_".join(name_tokens(raw)).upper()


CLEANING_STATUSES = {
    "GODKJENT_MED_ANSATTE": CleaningStatus.APPROVED_WITH_EMPLOYEES,
    "GODKJENT_UTEN_ANSATTE": CleaningStatus.APPROVED_WITHOUT_EMPLOYEES,
    "SOKNAD_UNDER_BEHANDLING": CleaningStatus.APPLICATION_PENDING,
    "HMS_KORTBESTILLING_UNDER_BEHANDLING": CleaningStatus.CARD_ORDER_PENDING,
    "KORTBESTILLING_UNDER_BEHANDLING": CleaningStatus.CARD_ORDER_PENDING,
    "IKKE_GODKJENT": CleaningStatus.NOT_APPROVED,
}
STAFFING_STATUSES = {
    "GODKJENT": StaffingStatus.APPROVED,
    "UNDER_BEHANDLING": StaffingStatus.PENDING,
    "IKKE_GODKJENT": StaffingStatus.NOT_APPROVED,
    "AVREGISTRERT": StaffingStatus.DEREGISTERED,
}


# --------------------------------------------------------------------------- HTTP


RequestHook = Callable[[], Awaitable[None]]


class RegisterClient:
    """One register's connection pool and sign-in: GET a path, get (status, body).

    The register's credentials go on every request: a Maskinporten token for its scope
    (fetched anew once when the register answers 401, a token revoked early), or a fixed
    bearer token. `on_request` is awaited before every call (the re-checks' rate limit).
    Anything that is not an answer (refused, reset, timed out) raises RegisterUnavailable.
    """

    def __init__(
        self,
        register: Register,
        base_url: str,
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        maskinporten: Maskinporten | None = None,
        scope: str | None = None,
        on_request: RequestHook | None = None,
        max_connections: int = 100,
    ) -> None:
        self.register = register
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.maskinporten = maskinporten if scope else None
        self.scope = scope or ""
        self.on_request = on_request
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.is_closed = False

    def _pool(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=self.timeout,
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                raise_for_status=False,
                trust_env=True,  # a proxy from the environment, as operators set it
            )
        return self._session

    async def get(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        token = await self._token()
        status, body = await self._get(path, headers, params, token)
        if status == 401 and self.maskinporten is not None:
            self.maskinporten.forget(self.scope, token)
            status, body = await self._get(path, headers, params, await self._token())
        return status, body

    async def _token(self) -> str:
        if self.maskinporten is None:
            return ""
        try:
            return await self.maskinporten.token(self.scope)
        except TokenUnavailable as exc:
            raise RegisterUnavailable(self.register, f"maskinporten: {exc.why}") from exc

    async def _get(
        self,
        path: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        token: str,
    ) -> tuple[int, bytes]:
        if self.on_request is not None:
            await self.on_request()
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            async with self._pool().get(self.base_url + path, headers=sent, params=params) as r:
                return r.status, await r.read()
        except TimeoutError as exc:
            raise RegisterUnavailable(self.register, "timeout") from exc
        except aiohttp.ClientError as exc:
            raise RegisterUnavailable(self.register, type(exc).__name__) from exc

    async def aclose(self) -> None:
        self.is_closed = True
        if self._session is not None:
            await self._session.close()


class HttpRegister:
    """GET JSON from one register; every failure that is not an answer is transient."""

    def __init__(self, register: Register, client: RegisterClient) -> None:
        self.register = register
        self.client = client

    async def get(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON) for 200, 404 and 410; RegisterUnavailable otherwise."""
        with external_call("registry_check", self.register.value) as call:
            status, body = await self.client.get(path, headers, params)
            if status not in (200, 404, 410):
                call.error = f"http_{status}"
                raise RegisterUnavailable(self.register, f"HTTP {status}")
        if status == 404:
            return 404, None
        try:
            return status, json.loads(body)
        except ValueError as exc:
            raise RegisterUnavailable(self.register, "answer is not JSON") from exc

    def parse(self, model: type[_W], data: Any) -> _W:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # The register changed its shape or sent garbage: not the employer's fault.
            raise RegisterUnavailable(self.register, "answer not understood") from exc


class HttpEnhetsregisteret(HttpRegister):
    def __init__(self, client: RegisterClient) -> None:
        super().__init__(Register.ENHETSREGISTERET, client)

    async def _get_unit(self, kind: str, org_number: str) -> Unit | None:
        status, data = await self.get(f"/{kind}/{org_number}")
        if status == 404:
            return None
        if status == 410:  # removed from the register: deleted
            gone = self.parse(_Gone, data)
            return Unit(
                org_number=gone.organisasjonsnummer,
                deleted_on=gone.slettedato or date.min,
                sub_unit=kind == "underenheter",
                parent=gone.overordnetEnhet,
            )
        return self.parse(_Enhet, data).unit()

    async def main_unit(self, org_number: str) -> Unit | None:
        return await self._get_unit("enheter", org_number)

    async def unit(self, org_number: str) -> Unit | None:
        found = await self._get_unit("enheter", org_number)
        if found is None:
            found = await self._get_unit("underenheter", org_number)
        return found

    async def roles(self, org_number: str) -> list[Role]:
        status, data = await self.get(f"/enheter/{org_number}/roller")
        if status != 200:
            return []
        roles = []
        for group in self.parse(_Roller, data).rollegrupper:
            for r in group.roller:
                person = r.person
                roles.append(
                    Role(
                        code=r.type.kode,
                        name=person.navn.name() if person and person.navn else None,
                        birth_date=person.fodselsdato if person else None,
                        resigned=r.fratraadt,
                    )
                )
        return roles

    async def updates(
        self, kind: FeedKind, from_id: int | None, since: datetime, size: int
    ) -> list[UnitUpdate]:
        params = {"size": str(size)}
        if from_id is not None:
            params["oppdateringsid"] = str(from_id)
        else:
            params["dato"] = since.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        status, data = await self.get(f"/oppdateringer/{kind}", params=params)
        if status != 200 or not isinstance(data, dict):
            raise RegisterUnavailable(self.register, f"update feed answered {status}")
        key = "oppdaterteEnheter" if kind == "enheter" else "oppdaterteUnderenheter"
        embedded = data.get("_embedded") or {}  # HAL leaves _embedded out of an empty page
        entries = embedded.get(key, []) if isinstance(embedded, dict) else None
        if not isinstance(entries, list):
            raise RegisterUnavailable(self.register, "answer not understood")
        updates = [self.parse(_Oppdatering, e) for e in entries]
        return [
            UnitUpdate(u.oppdateringsid, u.organisasjonsnummer, u.endringstype, u.dato)
            for u in sorted(updates, key=lambda u: u.oppdateringsid)
        ]


class _StatusRegister(HttpRegister):
    async def _status(self, org_number: str) -> str | None:
        status, data = await self.get(f"/virksomheter/{org_number}")
        if status != 200:
            return None
        return _status_key(self.parse(_Virksomhet, data).status)


class HttpRenholdsregisteret(_StatusRegister):
    def __init__(self, client: RegisterClient) -> None:
        super().__init__(Register.RENHOLDSREGISTERET, client)

    async def status(self, org_number: str) -> CleaningStatus | None:
        raw = await self._status(org_number)
        if raw is None:
            return None
        if raw not in CLEANING_STATUSES:
            raise RegisterUnavailable(self.register, "unknown status")
        return CLEANING_STATUSES[raw]


class HttpBemanningsforetaksregisteret(_StatusRegister):
    def __init__(self, client: RegisterClient) -> None:
        super().__init__(Register.BEMANNINGSFORETAKSREGISTERET, client)

    async def status(self, org_number: str) -> StaffingStatus | None:
        raw = await self._status(org_number)
        if raw is None:
            return None
        if raw not in STAFFING_STATUSES:
            raise RegisterUnavailable(self.register, "unknown status")
        return STAFFING_STATUSES[raw]


class HttpAaRegisteret(HttpRegister):
    def __init__(self, client: RegisterClient) -> None:
        super().__init__(Register.AAREGISTERET, client)

    async def employments(self, national_id: str) -> list[EmploymentRecord]:
        status, data = await self.get(
            "/v2/arbeidstaker/arbeidsforhold", {PERSON_HEADER: national_id}
        )
        if status != 200:
            return []
        if not isinstance(data, list):
            raise RegisterUnavailable(self.register, "answer not understood")
        records, skipped = [], 0
        for item in data:
            try:
                a = _Arbeidsforhold.model_validate(item)
            except ValidationError:
                skipped += 1  # one entry we cannot read never spoils the others
                continue
            org = a.arbeidssted.org_number()
            if org is None:  # an employer that is a person: no unit a card can name
                skipped += 1
                continue
            records.append(
                EmploymentRecord(
                    org_number=org,
                    start=a.ansettelsesperiode.startdato,
                    end=a.ansettelsesperiode.sluttdato,
                    legal_entity=a.opplysningspliktig.org_number()
                    if a.opplysningspliktig
                    else None,
                )
            )
        if skipped:
            log.info("aaregisteret.entries_skipped", skipped=skipped, read=len(records))
        return records


class HttpFolkeregisteret(HttpRegister):
    def __init__(self, client: RegisterClient) -> None:
        super().__init__(Register.FOLKEREGISTERET, client)

    async def person(self, national_id: str) -> Person | None:
        status, data = await self.get(f"/v1/personer/{national_id}")
        if status != 200:
            return None
        p = self.parse(_FregPerson, data)
        name, birth = _current(p.navn), _current(p.foedsel)
        if name is None or birth is None or birth.foedselsdato is None:
            raise RegisterUnavailable(self.register, "answer not understood")
        ids = {i.foedselsEllerDNummer: i for i in p.identifikasjonsnummer}
        in_use = next((i for i in p.identifikasjonsnummer if i.status == "iBruk"), None)
        asked = ids.get(national_id)
        current_id = None
        if asked is not None and asked.status == "opphoert":
            if in_use is None or in_use.foedselsEllerDNummer == national_id:
                return None  # ceased, and no number replaces it
            current_id = in_use.foedselsEllerDNummer
        identifier = in_use or asked
        statuses = {s.status for s in p.status if s.erGjeldende}
        return Person(
            name=PersonName(name.fornavn, name.etternavn, name.mellomnavn or ""),
            birth_date=birth.foedselsdato,
            d_number=identifier is not None and identifier.identifikatortype == "dNummer",
            d_number_active="inaktiv" not in statuses,
            current_id=current_id,
            deceased="doed" in statuses or bool(p.doedsfall),
            emigrated="utflyttet" in statuses,
        )


# --------------------------------------------------------------------------- wiring


def _client(
    register: Register,
    base_url: str,
    settings: RegistryCheckSettings,
    maskinporten: Maskinporten | None,
    on_request: RequestHook | None = None,
    max_connections: int = 100,
) -> RegisterClient:
    """A register's connection pool: a Maskinporten token when the register has a scope
    and Maskinporten is configured, else the settings' bearer token, else none (open)."""
    headers = {"Accept": "application/json", "User-Agent": "kortflyt-registry-check"}
    scope = settings.maskinporten_scopes.get(register.value) if maskinporten else None
    if not scope and (token := settings.register_tokens.get(register.value)) is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return RegisterClient(
        register,
        base_url,
        timeout_s=settings.register_timeout_s,
        headers=headers,
        maskinporten=maskinporten,
        scope=scope,
        on_request=on_request,
        max_connections=max_connections,
    )


def maskinporten_of(settings: RegistryCheckSettings) -> Maskinporten | None:
    """The shared Maskinporten client, when a client id and key are configured."""
    if not settings.maskinporten_client_id or not settings.maskinporten_key_file:
        return None
    return Maskinporten.from_key_file(
        settings.maskinporten_key_file,
        client_id=settings.maskinporten_client_id,
        token_url=settings.maskinporten_token_url,
        audience=settings.maskinporten_audience,
        key_id=settings.maskinporten_key_id,
        timeout_s=settings.register_timeout_s,
    )


@dataclass
class HttpRegisters:
    """The five HTTP adapters and their connection pools (closed with `aclose`)."""

    registers: Registers
    feed: UnitUpdates  # Enhetsregisteret's update feed, on its client
    clients: list[RegisterClient]
    maskinporten: Maskinporten | None = None

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        if self.maskinporten is not None:
            await self.maskinporten.aclose()


def http_registers(
    settings: RegistryCheckSettings,
    on_request: RequestHook | None = None,
    max_connections: int = 100,
) -> HttpRegisters:
    """The five adapters on connection pools of their own; `on_request` is awaited before
    every call (the card re-checks' rate limit), `max_connections` caps each pool."""
    mp = maskinporten_of(settings)
    urls = {
        Register.ENHETSREGISTERET: settings.enhetsregisteret_url,
        Register.RENHOLDSREGISTERET: settings.renholdsregisteret_url,
        Register.BEMANNINGSFORETAKSREGISTERET: settings.bemanningsforetaksregisteret_url,
        Register.AAREGISTERET: settings.aaregisteret_url,
        Register.FOLKEREGISTERET: settings.folkeregisteret_url,
    }
    clients = {
        r: _client(r, url, settings, mp, on_request, max_connections) for r, url in urls.items()
    }
    er = HttpEnhetsregisteret(clients[Register.ENHETSREGISTERET])
    registers = Registers(
        enhetsregisteret=er,
        renholdsregisteret=HttpRenholdsregisteret(clients[Register.RENHOLDSREGISTERET]),
        bemanningsforetaksregisteret=HttpBemanningsforetaksregisteret(
            clients[Register.BEMANNINGSFORETAKSREGISTERET]
        ),
        aaregisteret=HttpAaRegisteret(clients[Register.AAREGISTERET]),
        folkeregisteret=HttpFolkeregisteret(clients[Register.FOLKEREGISTERET]),
    )
    return HttpRegisters(registers, er, list(clients.values()), mp)
