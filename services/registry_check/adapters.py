"""The five registers behind one small interface each, and their HTTP adapters.

Each adapter is configured by a base URL, an optional bearer token and a timeout, and
turns the register's JSON into the domain's values. A register that times out, cannot
be reached, answers 5xx (or 429, 401/403, or JSON we cannot read) raises
`RegisterUnavailable`: the stage retries it, it never becomes a rejection. 404 means
"not in the register", a rule's input.

Enhetsregisteret follows the open API of data.brreg.no (`/enheter/{orgnr}`,
`/underenheter/{orgnr}` with `overordnetEnhet`, `/enheter/{orgnr}/roller`; 410 Gone
for a deleted unit). The other four have JSON shapes of kortflyt's fake register
server (tests/fakes/registers.py); national ids travel in a header, never in a URL,
so they stay out of access logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, TypeVar

import httpx
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
)
from shared.logging import get_logger
from shared.settings import Settings

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
    organisasjonsform: _Code | None = None
    overordnetEnhet: str | None = None
    slettedato: date | None = None
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
            bankrupt=self.konkurs,
            winding_up=self.underAvvikling,
            compulsory_dissolution=self.underTvangsavviklingEllerTvangsopplosning,
            vat_registered=self.registrertIMvaregisteret,
            nace=self.naeringskode1.kode if self.naeringskode1 else None,
        )


class _Gone(_Wire):
    organisasjonsnummer: str
    slettedato: date | None = None


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


class _Virksomhet(_Wire):
    organisasjonsnummer: str
    status: str


class _Org(_Wire):
    organisasjonsnummer: str


class _Periode(_Wire):
    startdato: date
    sluttdato: date | None = None


class _Arbeidsforhold(_Wire):
    arbeidsgiver: _Org
    opplysningspliktig: _Org | None = None
    ansettelsesperiode: _Periode


class _Identifikator(_Wire):
    type: str  # FNR or DNR
    status: str = "I_BRUK"  # I_BRUK or INAKTIV


class _Person(_Wire):
    identifikator: _Identifikator
    navn: _Navn
    foedselsdato: date


CLEANING_STATUSES = {
    "GODKJENT_MED_ANSATTE": CleaningStatus.APPROVED_WITH_EMPLOYEES,
    "GODKJENT_UTEN_ANSATTE": CleaningStatus.APPROVED_WITHOUT_EMPLOYEES,
    "SOKNAD_UNDER_BEHANDLING": CleaningStatus.APPLICATION_PENDING,
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


class HttpRegister:
    """GET JSON from one register; every failure that is not an answer is transient."""

    def __init__(self, register: Register, client: httpx.AsyncClient) -> None:
        self.register = register
        self.client = client

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON) for 200, 404 and 410; RegisterUnavailable otherwise."""
        try:
            response = await self.client.get(path, headers=headers)
        except httpx.TimeoutException as exc:
            raise RegisterUnavailable(self.register, "timeout") from exc
        except httpx.HTTPError as exc:
            raise RegisterUnavailable(self.register, type(exc).__name__) from exc
        if response.status_code not in (200, 404, 410):
            raise RegisterUnavailable(self.register, f"HTTP {response.status_code}")
        if response.status_code == 404:
            return 404, None
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise RegisterUnavailable(self.register, "answer is not JSON") from exc

    def parse(self, model: type[_W], data: Any) -> _W:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # The register changed its shape or sent garbage: not the employer's fault.
            raise RegisterUnavailable(self.register, "answer not understood") from exc


class HttpEnhetsregisteret(HttpRegister):
    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(Register.ENHETSREGISTERET, client)

    async def _get_unit(self, kind: str, org_number: str) -> Unit | None:
        status, data = await self.get(f"/{kind}/{org_number}")
        if status == 404:
            return None
        if status == 410:  # removed from the register: deleted
            gone = self.parse(_Gone, data)
            return Unit(org_number=gone.organisasjonsnummer, deleted_on=gone.slettedato or date.min)
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


class _StatusRegister(HttpRegister):
    async def _status(self, org_number: str) -> str | None:
        status, data = await self.get(f"/virksomheter/{org_number}")
        if status != 200:
            return None
        return self.parse(_Virksomhet, data).status


class HttpRenholdsregisteret(_StatusRegister):
    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(Register.RENHOLDSREGISTERET, client)

    async def status(self, org_number: str) -> CleaningStatus | None:
        raw = await self._status(org_number)
        if raw is None:
            return None
        if raw not in CLEANING_STATUSES:
            raise RegisterUnavailable(self.register, "unknown status")
        return CLEANING_STATUSES[raw]


class HttpBemanningsforetaksregisteret(_StatusRegister):
    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(Register.BEMANNINGSFORETAKSREGISTERET, client)

    async def status(self, org_number: str) -> StaffingStatus | None:
        raw = await self._status(org_number)
        if raw is None:
            return None
        if raw not in STAFFING_STATUSES:
            raise RegisterUnavailable(self.register, "unknown status")
        return STAFFING_STATUSES[raw]


class HttpAaRegisteret(HttpRegister):
    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(Register.AAREGISTERET, client)

    async def employments(self, national_id: str) -> list[EmploymentRecord]:
        status, data = await self.get("/arbeidsforhold", {PERSON_HEADER: national_id})
        if status != 200:
            return []
        if not isinstance(data, list):
            raise RegisterUnavailable(self.register, "answer not understood")
        return [
            EmploymentRecord(
                org_number=a.arbeidsgiver.organisasjonsnummer,
                start=a.ansettelsesperiode.startdato,
                end=a.ansettelsesperiode.sluttdato,
                legal_entity=a.opplysningspliktig.organisasjonsnummer
                if a.opplysningspliktig
                else None,
            )
            for a in (self.parse(_Arbeidsforhold, item) for item in data)
        ]


class HttpFolkeregisteret(HttpRegister):
    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(Register.FOLKEREGISTERET, client)

    async def person(self, national_id: str) -> Person | None:
        status, data = await self.get("/personer", {PERSON_HEADER: national_id})
        if status != 200:
            return None
        p = self.parse(_Person, data)
        return Person(
            name=p.navn.name(),
            birth_date=p.foedselsdato,
            d_number=p.identifikator.type == "DNR",
            d_number_active=p.identifikator.status != "INAKTIV",
        )


# --------------------------------------------------------------------------- wiring


def _client(register: Register, base_url: str, settings: Settings) -> httpx.AsyncClient:
    headers = {"Accept": "application/json", "User-Agent": "kortflyt-registry-check"}
    token = settings.register_tokens.get(register.value)
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(settings.register_timeout_s),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


@dataclass
class HttpRegisters:
    """The five HTTP adapters and their connection pools (closed with `aclose`)."""

    registers: Registers
    clients: list[httpx.AsyncClient]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def http_registers(settings: Settings) -> HttpRegisters:
    clients = {
        Register.ENHETSREGISTERET: _client(
            Register.ENHETSREGISTERET, settings.enhetsregisteret_url, settings
        ),
        Register.RENHOLDSREGISTERET: _client(
            Register.RENHOLDSREGISTERET, settings.renholdsregisteret_url, settings
        ),
        Register.BEMANNINGSFORETAKSREGISTERET: _client(
            Register.BEMANNINGSFORETAKSREGISTERET,
            settings.bemanningsforetaksregisteret_url,
            settings,
        ),
        Register.AAREGISTERET: _client(Register.AAREGISTERET, settings.aaregisteret_url, settings),
        Register.FOLKEREGISTERET: _client(
            Register.FOLKEREGISTERET, settings.folkeregisteret_url, settings
        ),
    }
    registers = Registers(
        enhetsregisteret=HttpEnhetsregisteret(clients[Register.ENHETSREGISTERET]),
        renholdsregisteret=HttpRenholdsregisteret(clients[Register.RENHOLDSREGISTERET]),
        bemanningsforetaksregisteret=HttpBemanningsforetaksregisteret(
            clients[Register.BEMANNINGSFORETAKSREGISTERET]
        ),
        aaregisteret=HttpAaRegisteret(clients[Register.AAREGISTERET]),
        folkeregisteret=HttpFolkeregisteret(clients[Register.FOLKEREGISTERET]),
    )
    return HttpRegisters(registers, list(clients.values()))
