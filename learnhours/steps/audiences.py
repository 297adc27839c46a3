"""Who reads which summary, and the ledger key each copy is written under: decided here once,
then both checked against the ledger ("already sent?") and written with, by construction."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from learnhours.notifiers.drafts import Context, Recipient, final_key, summary_key
from learnhours.plans import all_hold
from learnhours.steps.judging import Compliance
from learnhours.transforms.compliance import AgencyResult
from learnhours.warehouse import roster_queries


@dataclass(frozen=True)
class Audience:
    """One summary's readers and what it covers: the plan's HR office (a plan of one agency: the
    whole plan, its agency's HR contacts with it; a plan of several: the government's roll-up),
    or one agency's HR contacts (its people only)."""

    recipients: tuple[Recipient, ...]
    agency: AgencyResult | None = None

    def owed(self, done: Container[str]) -> tuple[Recipient, ...]:
        """The readers whose copy is not in the ledger yet."""
        return tuple(r for r in self.recipients if r.key not in done)


def recipients(
    addresses: Iterable[str], today: date, final: bool, agency_key: str = ""
) -> tuple[Recipient, ...]:
    """Each address once, keyed for the ledger: the daily summary per day and address, the final
    one per address; an agency's own summary per agency as well."""
    if final:
        return tuple(Recipient(a, final_key(a, agency_key)) for a in dict.fromkeys(addresses))
    return tuple(Recipient(a, summary_key(today, a, agency_key)) for a in dict.fromkeys(addresses))


def audiences(
    ctx: Context, result: Compliance, contacts: Mapping[str, tuple[str, ...]], final: bool
) -> list[Audience]:
    """The summaries a part of the plan writes. A plan of one agency has one summary: its HR
    office's, with its agency's HR contacts. With several agencies, each agency with an HR
    contact gets its own; the government's roll-up (rollup_audience) is the plan's, written
    once every part is done. `contacts`: each agency's HR addresses (agency_hr)."""
    if not result.several_agencies:
        theirs = [a for agency in result.agencies for a in contacts[agency.key]]
        return [Audience(recipients([*ctx.hr_addresses, *theirs], ctx.today, final))]
    return [
        Audience(recipients(contacts[a.key], ctx.today, final, a.key), a)
        for a in result.agencies
        if a.headcount and contacts[a.key]
    ]


def rollup_audience(ctx: Context, final: bool) -> Audience:
    """The government's roll-up: the plan's HR office."""
    return Audience(recipients(ctx.hr_addresses, ctx.today, final))


def agency_hr(connection: Connection, result: Compliance) -> dict[str, tuple[str, ...]]:
    """Each agency's HR addresses: the contacts file's (by code, else name), and the roster's
    people of that agency the plan's `reminders.agency_hr` conditions pick out."""
    listed = roster_queries.agency_contacts(connection)
    conditions = result.plan.reminders.agency_hr
    out = {}
    for a in result.agencies:
        found = [*listed.get(a.agency_code, ()), *(listed.get(a.agency, ()) if a.agency else ())]
        if conditions:
            found += [p.member.email or "" for p in a.people if all_hold(conditions, p.member)]
        out[a.key] = tuple(dict.fromkeys(x.strip() for x in found if x and x.strip()))
    return out


def agency_scope(audience: Audience) -> frozenset[str]:
    """The ledger keys one agency's summary speaks of: its people, its units, its summaries."""
    agency = audience.agency
    assert agency is not None
    return frozenset(
        [p.member.person_id for p in agency.people]
        + [u.key for u in agency.units]
        + [r.key for r in audience.recipients]
    )
