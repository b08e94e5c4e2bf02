"""Ask the registers about one order and apply the rules: the checks, without a database.

`run_checks` is what `prepare` runs before the transaction. It asks only what the
rules need, independent questions concurrently, and lets `RegisterUnavailable`
propagate (the stage turns it into a retry); everything else is a `RuleResult`, plus
what `order.approved` must carry (`Approval`: the card's employer and validity inputs).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date

from services.registry_check.adapters import Enhetsregisteret, Registers
from services.registry_check.domain import (
    Approval,
    EmploymentRecord,
    Person,
    RuleResult,
    StaffingStatus,
    Unit,
    Worker,
    employer_orgs,
    is_staffing_company,
    legal_employer,
    matching_employment,
    rule_agency,
    rule_card_type,
    rule_employer,
    rule_employment,
    rule_person,
    rule_staffing,
    rule_vat,
)
from shared.events import OrderDetails


async def resolve_employer(
    er: Enhetsregisteret, org_number: str
) -> tuple[Unit | None, Unit | None]:
    """(the unit the order names, its main unit); the same unit twice for a main unit."""
    named = await er.unit(org_number)
    if named is None or not named.is_sub_unit:
        return named, named
    if named.parent is None:
        return named, None  # a deleted sub-unit: its main unit is found another way
    return named, await er.main_unit(named.parent)


async def _none() -> None:
    return None


async def _no_employments() -> list[EmploymentRecord]:
    return []


async def _with_legal_entities(
    er: Enhetsregisteret, employments: list[EmploymentRecord], orgs: frozenset[str]
) -> list[EmploymentRecord]:
    """Fill in the main unit of employments reported on a sub-unit without one."""
    resolved = []
    for e in employments:
        if e.legal_entity is None and e.org_number not in orgs:
            unit = await er.unit(e.org_number)
            if unit is not None and unit.parent is not None:
                e = replace(e, legal_entity=unit.parent)
        resolved.append(e)
    return resolved


@dataclass(frozen=True)
class Checked:
    results: list[RuleResult]
    approval: Approval


async def _main_of_deleted_sub_unit(
    er: Enhetsregisteret, named: Unit, employments: list[EmploymentRecord]
) -> Unit | None:
    """A sub-unit gone from the register (410) names no parent: Aa-registeret's
    opplysningspliktig of an employment on it does."""
    parents = {e.legal_entity for e in employments if e.org_number == named.org_number}
    for parent in sorted(p for p in parents if p):
        main = await er.main_unit(parent)
        if main is not None:
            return main
    return None


async def run_checks(registers: Registers, order: OrderDetails, today: date) -> Checked:
    er = registers.enhetsregisteret
    national_id = order.worker.national_id
    worker = Worker(
        given_name=order.worker.given_name,
        family_name=order.worker.family_name,
        birth_date=order.worker.birth_date,
        national_id=national_id,
    )
    agency_org = order.employment.agency_org_number
    async with asyncio.TaskGroup() as tg:
        employer_t = tg.create_task(resolve_employer(er, order.employer.org_number))
        agency_t = tg.create_task(resolve_employer(er, agency_org)) if agency_org else None
        person_t: asyncio.Task[Person | None] = tg.create_task(
            registers.folkeregisteret.person(national_id) if national_id else _none()
        )
        employments_t = tg.create_task(
            registers.aaregisteret.employments(national_id) if national_id else _no_employments()
        )
    person = person_t.result()
    employments = employments_t.result()
    if person is not None and person.current_id is not None:
        # A ceased number replaced by another: the person is checked as the current one.
        employments = await registers.aaregisteret.employments(person.current_id)
    named, main = employer_t.result()
    if named is not None and main is None and named.is_sub_unit and named.deleted_on:
        main = await _main_of_deleted_sub_unit(er, named, employments)
    results = [rule_employer(named, main), rule_person(worker, person)]
    d_number_active = person.d_number_active if person is not None and person.d_number else None
    if named is None or main is None:
        # nothing else can be judged without the employer
        return Checked(results, Approval(None, d_number_active, None))

    agency_named, agency_main = agency_t.result() if agency_t else (None, None)
    staffing = is_staffing_company(main, named)
    async with asyncio.TaskGroup() as tg:
        cleaning_t = tg.create_task(registers.renholdsregisteret.status(main.org_number))
        staffing_t: asyncio.Task[StaffingStatus | None] = tg.create_task(
            registers.bemanningsforetaksregisteret.status(main.org_number) if staffing else _none()
        )
        agency_status_t: asyncio.Task[StaffingStatus | None] = tg.create_task(
            registers.bemanningsforetaksregisteret.status(agency_main.org_number)
            if agency_main
            else _none()
        )
    cleaning = cleaning_t.result()
    if cleaning is None and named is not main:
        # Registered under the sub-unit's number instead of the main unit's.
        cleaning = await registers.renholdsregisteret.status(named.org_number)

    results += [
        rule_vat(main),
        rule_card_type(order.card_type, cleaning, order.employment.type),
        rule_staffing(named, main, staffing_t.result()),
    ]
    if agency_org:
        results.append(rule_agency(agency_status_t.result()))

    orgs = employer_orgs(named, main, agency_named, agency_main)
    roles = None
    if matching_employment(employments, orgs, today) is None:
        employments = await _with_legal_entities(er, employments, orgs)
        if matching_employment(employments, orgs, today) is None:
            roles = await er.roles(main.org_number)
    results.append(rule_employment(order.employment.type, orgs, employments, roles, worker, today))
    found = matching_employment(employments, orgs, today)
    approval = Approval(
        legal_employer=legal_employer(order.employment.type, main, agency_main),
        d_number_active=d_number_active,
        employment_end=found.end if found is not None else None,
    )
    return Checked(results, approval)


@dataclass(frozen=True)
class Rechecked:
    """A produced card's scheduled re-check: the order rules' results for the requirements
    asked about (None: not asked, e.g. no cleaning approval for a construction card)."""

    employment: RuleResult | None
    cleaning: RuleResult | None
    staffing: RuleResult | None


async def recheck_card(
    registers: Registers,
    order: OrderDetails,
    employer_org: str,
    orgs: frozenset[str],
    staffing: bool,
    today: date,
) -> Rechecked:
    """Ask again what keeps a produced card valid beside its employer (the update feed
    follows that): the employment in Aa-registeret (with an owner's or partner's role in
    Enhetsregisteret when no employment is found; a posted worker is not asked about), the
    cleaning approval of a cleaning card's employer, the staffing approval of a staffing
    company. The same rules as the order's checks; `RegisterUnavailable` propagates (the
    card is tried again later)."""
    er = registers.enhetsregisteret
    national_id = order.worker.national_id
    worker = Worker(
        given_name=order.worker.given_name,
        family_name=order.worker.family_name,
        birth_date=order.worker.birth_date,
        national_id=national_id,
    )
    employment: RuleResult | None = None
    if order.employment.type != "posted":
        employments = await registers.aaregisteret.employments(national_id) if national_id else []
        roles = None
        if matching_employment(employments, orgs, today) is None:
            employments = await _with_legal_entities(er, employments, orgs)
            if matching_employment(employments, orgs, today) is None:
                roles = await er.roles(employer_org)  # an owner or partner: the role proves it
        employment = rule_employment(order.employment.type, orgs, employments, roles, worker, today)
    cleaning = None
    if order.card_type == "cleaning":
        status = await registers.renholdsregisteret.status(employer_org)
        if status is None and order.employer.org_number != employer_org:
            status = await registers.renholdsregisteret.status(order.employer.org_number)
        cleaning = rule_card_type(order.card_type, status, order.employment.type)
    staffing_result = None
    if staffing:
        staffing_result = rule_agency(
            await registers.bemanningsforetaksregisteret.status(employer_org)
        )
    return Rechecked(employment, cleaning, staffing_result)
