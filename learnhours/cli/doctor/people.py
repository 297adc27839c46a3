"""The plans of tonight against the roster: which are open, that no one is bound by two, whom
each binds, and whether the people to remind can be reached."""

from __future__ import annotations

from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed
from learnhours.cli.output import printable


def open_plans(office: Office) -> Verdict:
    from learnhours.taipei import roc

    plans = office.open_plans
    if not plans:
        return failed(
            f"{roc(office.today)} 沒有進行中的計畫：夜間作業不會做任何事；請在計畫資料夾放入今年的計畫"
        )
    return passed(f"{roc(office.today)} 進行中：{'、'.join(p.id for p in plans)}")


def no_overlap(office: Office) -> Verdict:
    from learnhours.steps.coverage import HOW_TO_SCOPE, overlaps

    plans = office.open_plans
    if len(plans) < 2:
        return passed("只有一個進行中的計畫")
    found = overlaps(office.members, plans)
    if found:
        return failed(f"{'；'.join(o.words() for o in found)}：同一人會收到兩份通知；{HOW_TO_SCOPE}")
    return passed(f"{len(plans)} 個進行中的計畫各自約束不同的人")


def population(office: Office) -> Verdict:
    """Each open plan binds someone on the roster; its people counted by staff category."""
    from learnhours.steps.coverage import population

    counted = [population(office.members, p) for p in office.open_plans]
    said = "；".join(f"{c.plan_id} {c.words()}" for c in counted)
    empty = [c.plan_id for c in counted if not c.bound]
    if empty:
        return failed(
            f"{said}。{'、'.join(empty)} 沒有約束名冊上任何人：請核對計畫的 population（人員類別）"
            "與 who，是否與名冊寫法相同"
        )
    return passed(f"名冊 {len(office.members)} 人：{said}")


def roster_addresses(office: Office) -> Verdict:
    """No one on the roster (nor an agency's HR contact) has a placeholder address."""
    from learnhours.notifiers.placeholders import like_patterns
    from learnhours.warehouse import roster_queries

    office.members  # noqa: B018 - the roster must be there first
    with office.engine.connect() as connection:
        found = roster_queries.addresses_like(connection, like_patterns())
    if found.people or found.contacts:
        where = []
        if found.people:
            where.append(f"名冊上 {found.people} 人")
        if found.contacts:
            where.append(f"人事聯絡名單 {found.contacts} 個機關")
        return failed(
            f"{'、'.join(where)}的電子郵件是示範或保留網域（如 {printable(found.example)}），"
            "寄不出去：請改名冊的電子郵件欄後重新匯入"
        )
    return passed("名冊上沒有示範或保留網域的電子郵件")


def short_without_address(office: Office) -> Verdict:
    """How many people short of hours tonight no reminder can reach (no address on the roster)."""
    from learnhours import steps

    lines = []
    missing = 0
    for plan in office.open_plans:
        result = steps.compute(office.engine, plan, office.today)
        short = [p for p in result.people if p.status == "short"]
        none = sum(1 for p in short if not (p.member.email or "").strip())
        missing += none
        lines.append(f"{plan.id} 未達成 {len(short)} 人，其中 {none} 人沒有電子郵件")
    said = "；".join(lines)
    if missing:
        return failed(f"{said}：他們收不到提醒（人事室摘要會列出）；請補上名冊的電子郵件欄")
    return passed(said)


CHECKS = [
    Check("今晚的計畫", open_plans),
    Check("計畫的對象不重疊", no_overlap),
    Check("名冊與計畫的對象", population),
    Check("名冊的電子郵件", roster_addresses),
    Check("未達成者的信箱", short_without_address, required=False),
]
