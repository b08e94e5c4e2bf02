"""The fake registers' data set: builders for every record shape, and the default seed.

    python -m devtools.fakes.register_data OUT.json     # write the default seed to a file

A data set is a dict of collections, each keyed by organisation number or national id:

    enheter         Enhetsregisteret, data.brreg.no's `/enheter/{orgnr}` shape
    underenheter    Enhetsregisteret, `/underenheter/{orgnr}` (with `overordnetEnhet`, and
                    `nedleggelsesdato` for a closed sub-unit)
    slettede        Enhetsregisteret, the body of its 410 Gone (`slettedato`) for a main unit
    slettede_underenheter   the same for a deleted sub-unit (`/underenheter/{orgnr}`)
    roller          Enhetsregisteret, `/enheter/{orgnr}/roller`
    renhold         Renholdsregisteret by orgnr: `{organisasjonsnummer, status}`
    bemanning       Bemanningsforetaksregisteret by orgnr: `{organisasjonsnummer, status}`
    arbeidsforhold  Aa-registeret (NAV's REST API v2) by national id: a list of
                    `{arbeidstaker, arbeidssted, opplysningspliktig, ansettelsesperiode}`
                    with `identer`; an employer may be a person
    personer        Folkeregisteret (Skatteetaten's person lookup) by national id:
                    `{identifikasjonsnummer, navn, foedsel, status, doedsfall}`

The default seed knows the employer and the worker of `devtools.factories.submitted()`
(every valid fødselsnummer of Kari Nordmann, born 1990-05-17), so the factory's orders
pass every check, plus a cleaning company, so `make run`'s samples show real outcomes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from devtools.factories import org_number
from shared.identifiers import _K1_WEIGHTS, _K2_WEIGHTS, _mod11_check_digit

Record = Any
COLLECTIONS = (
    "enheter",
    "underenheter",
    "slettede",
    "slettede_underenheter",
    "roller",
    "renhold",
    "bemanning",
    "arbeidsforhold",
    "personer",
)

FACTORY_EMPLOYER = "974760673"  # devtools.factories.submitted()'s employer
FACTORY_SITE = org_number(seed=4101)  # its sub-unit (where employments are reported)
CLEANING_COMPANY = org_number(seed=8121)  # an approved cleaning company
FACTORY_BIRTH = date(1990, 5, 17)


def _org_form(code: str) -> dict[str, str]:
    names = {
        "AS": "Aksjeselskap",
        "ENK": "Enkeltpersonforetak",
        "ANS": "Ansvarlig selskap",
        "DA": "Selskap med delt ansvar",
        "BEDR": "Underenhet til næringsdrivende og offentlig forvaltning",
    }
    return {"kode": code, "beskrivelse": names.get(code, code)}


def enhet(
    org: str,
    name: str,
    form: str = "AS",
    *,
    vat: bool = True,
    nace: str = "41.200",
    bankrupt: bool = False,
    winding_up: bool = False,
    compulsory: bool = False,
    deleted_on: date | None = None,
) -> Record:
    """A main unit as data.brreg.no's `/enheter/{orgnr}` returns it."""
    record: dict[str, Any] = {
        "organisasjonsnummer": org,
        "navn": name,
        "organisasjonsform": _org_form(form),
        "registreringsdatoEnhetsregisteret": "2010-01-04",
        "registrertIMvaregisteret": vat,
        "naeringskode1": {"kode": nace, "beskrivelse": "Oppføring av bygninger"},
        "antallAnsatte": 12,
        "forretningsadresse": {
            "land": "Norge",
            "landkode": "NO",
            "postnummer": "0150",
            "poststed": "OSLO",
            "adresse": ["Storgata 1"],
            "kommune": "OSLO",
            "kommunenummer": "0301",
        },
        "institusjonellSektorkode": {"kode": "2100", "beskrivelse": "Private aksjeselskaper mv."},
        "registrertIForetaksregisteret": form != "ENK",
        "registrertIStiftelsesregisteret": False,
        "registrertIFrivillighetsregisteret": False,
        "konkurs": bankrupt,
        "underAvvikling": winding_up,
        "underTvangsavviklingEllerTvangsopplosning": compulsory,
        "maalform": "Bokmål",
        "_links": {"self": {"href": f"https://data.brreg.no/enhetsregisteret/api/enheter/{org}"}},
    }
    if deleted_on is not None:
        record["slettedato"] = deleted_on.isoformat()
    return record


def underenhet(
    org: str, parent: str, name: str, *, nace: str = "41.200", closed_on: date | None = None
) -> Record:
    """A sub-unit as data.brreg.no's `/underenheter/{orgnr}` returns it (closed down:
    with `nedleggelsesdato`)."""
    record: dict[str, Any] = {
        "organisasjonsnummer": org,
        "navn": name,
        "organisasjonsform": _org_form("BEDR"),
        "registreringsdatoEnhetsregisteret": "2012-03-01",
        "registrertIMvaregisteret": False,
        "naeringskode1": {"kode": nace, "beskrivelse": "Oppføring av bygninger"},
        "antallAnsatte": 8,
        "overordnetEnhet": parent,
        "oppstartsdato": "2012-03-01",
        "beliggenhetsadresse": {
            "land": "Norge",
            "landkode": "NO",
            "postnummer": "5003",
            "poststed": "BERGEN",
            "adresse": ["Bryggen 2"],
            "kommune": "BERGEN",
            "kommunenummer": "4601",
        },
        "_links": {
            "self": {"href": f"https://data.brreg.no/enhetsregisteret/api/underenheter/{org}"},
            "overordnetEnhet": {
                "href": f"https://data.brreg.no/enhetsregisteret/api/enheter/{parent}"
            },
        },
    }
    if closed_on is not None:
        record["nedleggelsesdato"] = closed_on.isoformat()
    return record


def gone(org: str, deleted_on: date) -> Record:
    """The body of data.brreg.no's 410 Gone for a deleted unit."""
    return {"organisasjonsnummer": org, "slettedato": deleted_on.isoformat()}


def roller(org: str, roles: list[tuple[str, str, str, date]]) -> Record:
    """`/enheter/{orgnr}/roller`: (role code, given name, family name, birth date) each."""
    descriptions = {
        "INNH": "Innehaver",
        "DTPR": "Deltaker med proratarisk ansvar (delt ansvar)",
        "DTSO": "Deltaker med solidarisk ansvar (fullt ansvarlig)",
        "DAGL": "Daglig leder",
        "STYR": "Styre",
        "LEDE": "Styrets leder",
    }
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, (code, given, family, birth) in enumerate(roles):
        group = "DTSO" if code in ("DTSO", "DTPR") else code
        groups.setdefault(group, []).append(
            {
                "type": {"kode": code, "beskrivelse": descriptions.get(code, code)},
                "person": {
                    "fodselsdato": birth.isoformat(),
                    "navn": {"fornavn": given, "etternavn": family},
                    "erDoed": False,
                },
                "fratraadt": False,
                "rekkefolge": i,
            }
        )
    return {
        "rollegrupper": [
            {
                "type": {"kode": g, "beskrivelse": descriptions.get(g, g)},
                "sistEndret": "2024-01-02",
                "roller": members,
            }
            for g, members in groups.items()
        ],
        "_links": {
            "self": {"href": f"https://data.brreg.no/enhetsregisteret/api/enheter/{org}/roller"}
        },
    }


def renhold(org: str, status: str = "GODKJENT_MED_ANSATTE") -> Record:
    return {"organisasjonsnummer": org, "status": status}


def bemanning(org: str, status: str = "GODKJENT") -> Record:
    return {"organisasjonsnummer": org, "status": status}


def aktor_id(national_id: str) -> str:
    """A stable made-up NAV aktør-id (13 digits) for a national id."""
    return "2" + str(int(hashlib.sha256(national_id.encode()).hexdigest(), 16))[:12]


def _identer(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"type": t, "ident": i, "gjeldende": True} for t, i in pairs]


def arbeidsforhold(
    employer: str,
    start: date,
    end: date | None = None,
    legal_entity: str | None = None,
    *,
    national_id: str = "01010112345",
    employer_is_person: bool = False,
) -> Record:
    """One arbeidsforhold of NAV's Aa-registeret REST API v2 (`/v2/arbeidstaker/
    arbeidsforhold`): reported on `employer` (a sub-unit, or a person's national id when
    `employer_is_person`), with `legal_entity` as opplysningspliktig."""
    if employer_is_person:
        arbeidssted = {
            "type": "Person",
            "identer": _identer(("AKTORID", aktor_id(employer)), ("FOLKEREGISTERIDENT", employer)),
        }
    else:
        arbeidssted = {"type": "Underenhet", "identer": _identer(("ORGANISASJONSNUMMER", employer))}
    return {
        "id": hashlib.sha256(f"{national_id}{employer}{start}".encode()).hexdigest()[:8],
        "type": {"kode": "ordinaertArbeidsforhold", "beskrivelse": "Ordinært arbeidsforhold"},
        "arbeidstaker": {
            "identer": _identer(
                ("AKTORID", aktor_id(national_id)), ("FOLKEREGISTERIDENT", national_id)
            )
        },
        "arbeidssted": arbeidssted,
        "opplysningspliktig": (
            {"type": "Hovedenhet", "identer": _identer(("ORGANISASJONSNUMMER", legal_entity))}
            if legal_entity
            else None
        ),
        "ansettelsesperiode": {
            "startdato": start.isoformat(),
            "sluttdato": end.isoformat() if end else None,
        },
        "ansettelsesdetaljer": [
            {
                "type": "Ordinaer",
                "avtaltStillingsprosent": 100.0,
                "yrke": {"kode": "7124101", "beskrivelse": "TØMRER"},
            }
        ],
        "rapporteringsordning": {"kode": "a-ordningen", "beskrivelse": "A-ordningen"},
    }


def person(
    national_id: str,
    given: str,
    family: str,
    birth: date,
    *,
    middle: str | None = None,
    d_number: bool = False,
    active: bool = True,
    status: str | None = None,
    deceased_on: date | None = None,
    replaced_by: str | None = None,
) -> Record:
    """A person as Skatteetaten's Folkeregisteret lookup returns it. `status` is the
    person status (bosatt, utflyttet, doed, ...; a D-number's is midlertidig or inaktiv);
    `replaced_by`: `national_id` has ceased (opphoert) and points to this current one."""
    kind = "dNummer" if d_number else "foedselsnummer"
    ids = [
        {
            "foedselsEllerDNummer": national_id,
            "identifikatortype": kind,
            "status": "opphoert" if replaced_by else "iBruk",
            "erGjeldende": replaced_by is None,
            "kilde": "skatteetaten",
        }
    ]
    if replaced_by:
        ids.append(
            {
                "foedselsEllerDNummer": replaced_by,
                "identifikatortype": "foedselsnummer",
                "status": "iBruk",
                "erGjeldende": True,
                "kilde": "skatteetaten",
            }
        )
    if status is None:
        status = (
            "doed"
            if deceased_on
            else ("midlertidig" if active else "inaktiv")
            if d_number
            else "bosatt"
        )
    record: dict[str, Any] = {
        "identifikasjonsnummer": ids,
        "navn": [
            {
                "fornavn": given,
                "mellomnavn": middle,
                "etternavn": family,
                "erGjeldende": True,
                "kilde": "skatteetaten",
            }
        ],
        "foedsel": [
            {"foedselsdato": birth.isoformat(), "foedselsaar": str(birth.year), "erGjeldende": True}
        ],
        "status": [{"status": status, "erGjeldende": True, "kilde": "skatteetaten"}],
    }
    if deceased_on is not None:
        record["doedsfall"] = [{"doedsdato": deceased_on.isoformat(), "erGjeldende": True}]
    return record


def every_national_id(birth: date, d_number: bool = False) -> list[str]:
    """Every valid fødselsnummer (classic k1 rule) for a 1900s birth date, 000-499."""
    day = birth.day + (40 if d_number else 0)
    ids = []
    for individual in range(500):
        body = f"{day:02d}{birth.month:02d}{birth.year % 100:02d}{individual:03d}"
        k1 = _mod11_check_digit(body, _K1_WEIGHTS)
        if k1 is None:
            continue
        k2 = _mod11_check_digit(body + str(k1), _K2_WEIGHTS)
        if k2 is not None:
            ids.append(f"{body}{k1}{k2}")
    return ids


@dataclass
class DataSet:
    """Collections of records; `put` adds or replaces, `to_json` is the seed file."""

    collections: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {c: {} for c in COLLECTIONS}
    )

    def put(self, collection: str, key: str, record: Record) -> DataSet:
        assert collection in COLLECTIONS, collection
        self.collections[collection][key] = record
        return self

    def employ(
        self,
        national_id: str,
        employer: str,
        start: date,
        end: date | None = None,
        legal_entity: str | None = None,
    ) -> DataSet:
        existing = self.collections["arbeidsforhold"].setdefault(national_id, [])
        existing.append(arbeidsforhold(employer, start, end, legal_entity, national_id=national_id))
        return self

    def merge(self, other: DataSet) -> DataSet:
        for name, records in other.collections.items():
            self.collections[name].update(records)
        return self

    def to_json(self) -> dict[str, dict[str, Record]]:
        return self.collections


def admit(ds: DataSet, order: dict[str, Any], start: date = date(2020, 1, 1)) -> DataSet:
    """Records that let an order (a `devtools.factories.submitted()` dict) pass every check:
    its employer (unless known), its worker in Folkeregisteret, and an employment."""
    org = order["employer"]["org_number"]
    worker = order["worker"]
    if org not in ds.collections["enheter"] and org not in ds.collections["underenheter"]:
        ds.put("enheter", org, enhet(org, order["employer"]["name"]))
    if order["card_type"] == "cleaning" and org not in ds.collections["renhold"]:
        ds.put("renhold", org, renhold(org))
    nid = worker.get("national_id")
    if nid:
        birth = date.fromisoformat(worker["birth_date"])
        ds.put("personer", nid, person(nid, worker["given_name"], worker["family_name"], birth))
        ds.employ(nid, org, start, legal_entity=None)
    return ds


def default_seed() -> DataSet:
    """The factory's employer (with a sub-unit), its worker under every valid
    fødselsnummer, and an approved cleaning company that employs them too."""
    ds = DataSet()
    ds.put("enheter", FACTORY_EMPLOYER, enhet(FACTORY_EMPLOYER, "BYGG OG BETONG AS"))
    ds.put(
        "underenheter",
        FACTORY_SITE,
        underenhet(FACTORY_SITE, FACTORY_EMPLOYER, "BYGG OG BETONG AS AVD BERGEN"),
    )
    ds.put(
        "enheter",
        CLEANING_COMPANY,
        enhet(CLEANING_COMPANY, "RENT OG PENT AS", nace="81.210"),
    )
    ds.put("renhold", CLEANING_COMPANY, renhold(CLEANING_COMPANY))
    for nid in every_national_id(FACTORY_BIRTH):
        ds.put("personer", nid, person(nid, "Kari", "Nordmann", FACTORY_BIRTH))
        # Reported on the sub-unit, as employers usually do: the main unit must still match.
        ds.employ(nid, FACTORY_SITE, date(2020, 1, 1), legal_entity=FACTORY_EMPLOYER)
        ds.employ(nid, CLEANING_COMPANY, date(2021, 1, 1), legal_entity=CLEANING_COMPANY)
    return ds


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devtools.fakes.register_data OUT.json", file=sys.stderr)  # noqa: T201
        return 2
    Path(argv[0]).write_text(json.dumps(default_seed().to_json(), indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
