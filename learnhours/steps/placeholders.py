"""No real mail to a placeholder: before a plan's night goes to a real mail server, every sender
and recipient it would write to is checked, and one in a reserved or demo domain
(notifiers.placeholders) refuses the night before anything is written or sent, naming the plan
field, the setting or the roster column to fix. An unedited plan copied from the demo sent the
HR workbook, with every short person's full ID, to hr@demo.gov.tw."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from learnhours.notifiers.placeholders import is_placeholder, like_patterns
from learnhours.plans import Plan
from learnhours.settings import SettingsError
from learnhours.warehouse import roster_queries

_WHY = "（.example、.test 等保留網域與示範網域的信箱不存在，寄出的信會落到別人手上）"


class PlaceholderAddress(SettingsError):
    """A real send would go to or from a placeholder address: nothing was sent."""


def refuse_placeholders(
    engine: Engine,
    plans: Iterable[Plan],
    *,
    sender_of: dict[str, tuple[str, str]],
    hr_of: dict[str, tuple[tuple[str, ...], str]],
    pilot_to: str | None = None,
) -> None:
    """PlaceholderAddress naming each placeholder among the plans' senders, their recipients
    (`sender_of`, `hr_of`: plan id -> the addresses and where they are set): the HR addresses
    and the roster's and contacts list's, or in pilot mode the only one, `pilot_to`."""
    problems: list[str] = []
    for plan in plans:
        sender, where = sender_of[plan.id]
        if is_placeholder(sender):
            problems.append(f"寄件者 {sender} 是示範用的保留網域：請改{where}")
        addresses, where = hr_of[plan.id]
        for address in () if pilot_to else addresses:
            if is_placeholder(address):
                problems.append(f"人事室信箱 {address} 是示範用的保留網域：請改{where}")
    if pilot_to:
        if is_placeholder(pilot_to):
            problems.append(f"試寄信箱 {pilot_to} 是示範用的保留網域：請改設定 pilot_to")
    else:
        with engine.connect() as connection:
            found = roster_queries.addresses_like(connection, like_patterns())
        if found.people:
            problems.append(
                f"名冊上 {found.people} 人的電子郵件是示範用的保留網域（如 {found.example}）："
                "請改名冊的電子郵件欄（電子郵件、Email）後重新匯入"
            )
        if found.contacts:
            problems.append(
                f"人事聯絡名單有 {found.contacts} 個機關的信箱是示範用的保留網域："
                "請改其人事電子郵件欄後重新匯入"
            )
    if problems:
        raise PlaceholderAddress(f"未寄出任何郵件：{'；'.join(problems)}{_WHY}")
