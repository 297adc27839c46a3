"""The roster (person): a snapshot replaced by each roster file; people who left it are kept."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import agency_contact, person

_PEOPLE_PER_STATEMENT = 2000


def store_roster(connection: Connection, people: list[dict], batch_id: int) -> None:
    """Upsert everyone on the new roster; mark everyone else gone (never deleted)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(person)
    statement = insert.on_conflict_do_update(
        index_elements=["person_id"],
        set_={c.name: insert.excluded[c.name] for c in person.columns if c.name != "person_id"},
    )
    for group in in_groups(people, _PEOPLE_PER_STATEMENT):
        rows = [{**p, "on_roster": True, "batch_id": batch_id} for p in group]
        connection.execute(statement, rows)
    connection.execute(update(person).where(person.c.batch_id != batch_id).values(on_roster=False))


def store_contacts(connection: Connection, contacts: list, batch_id: int) -> None:
    """Replace the agencies' HR contacts with this file's (transforms.roster.Contact rows)."""
    connection.execute(delete(agency_contact))
    connection.execute(
        insert(agency_contact),
        [
            {
                "agency_key": c.agency_key,
                "agency_code": c.agency_code,
                "agency": c.agency,
                "hr_addresses": ", ".join(c.hr_addresses),
                "batch_id": batch_id,
            }
            for c in contacts
        ],
    )
