"""A night's mail is rendered one message at a time as it is written to the ledger (issue 17:
a national night's 150,000 reminders are never all in memory)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from learnhours.notifiers import drafts, ledger, superseding
from learnhours.notifiers.render import HeaderInjection
from learnhours.warehouse.schema import notice


def _tonight(count: int, bad: int | None = None, made: list | None = None) -> drafts.Tonight:
    tonight = drafts.Tonight(stage=30, last_day=date(2026, 12, 19), stale="")

    def make(i: int):  # noqa: ANN202
        def render(to: str) -> tuple[str, bytes, str]:
            if made is not None:
                made.append(i)
            if i == bad:
                raise HeaderInjection("主旨含換行字元")
            return f"提醒 {i}", f"To: {to}\r\n\r\nbody {i}\r\n".encode(), f"<{i}@example.gov.tw>"

        return render

    for i in range(count):
        tonight.drafts.append(
            drafts.Draft("reminder", f"K{i:04d}", 30, f"p{i}@example.gov.tw", "", b"", "",
                          f"員工{i}", "人事室", "", make(i))
        )  # fmt: skip
    return tonight


def test_i17_3_drafts_are_rendered_only_as_the_ledger_takes_them(engine, monkeypatch):
    made: list[int] = []
    tonight = _tonight(7, made=made)
    assert made == []  # planning the night renders nothing
    monkeypatch.setattr(ledger, "_ENQUEUE_BATCH", 3)
    stream = drafts.rendered(tonight)
    first = next(stream)
    assert made == [0] and first.subject == "提醒 0" and first.mime.endswith(b"body 0\r\n")
    with engine.begin() as connection:
        assert ledger.enqueue(connection, "p", stream, date(2026, 12, 1)) == 6  # the rest
        assert ledger.enqueue(connection, "p", drafts.rendered(tonight), date(2026, 12, 1)) == 1
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 7
    assert made == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]


def test_i17_3_a_draft_that_cannot_be_sent_is_skipped_with_its_reason_when_rendered():
    tonight = _tonight(3, bad=1)
    subjects = [d.subject for d in drafts.rendered(tonight)]
    assert subjects == ["提醒 0", "提醒 2"]
    assert [(s.label, s.reason) for s in tonight.skipped] == [("員工1", "主旨含換行字元")]
    assert [d.recipient_key for d in tonight.drafts] == ["K0000", "K0002"]


def _pending_reminder(connection, key: str, stage: int) -> None:  # noqa: ANN001
    connection.execute(
        notice.insert().values(
            plan_id="p", kind="reminder", recipient_key=key, stage=stage,
            created_on=date(2026, 12, 1), message_id=f"<{key}@example.gov.tw>",
            to_address=f"{key}@example.gov.tw", subject="s", mime="m", status="pending",
            detail="", attempts=1,
        )
    )  # fmt: skip


@pytest.mark.postgres
def test_i17_6_a_national_nights_short_people_do_not_overflow_postgresql_parameters(pg_engine):
    """Defect found by bench/national.py: superseding reminders to people no longer short said
    NOT IN (every short person), past PostgreSQL's 65,535 parameters at 218,598 short people."""
    short = {f"A{i:09d}" for i in range(70_000)}
    with pg_engine.begin() as connection:
        _pending_reminder(connection, "A000000001", 30)  # still short: kept
        _pending_reminder(connection, "B999999999", 30)  # met since: superseded
        assert superseding.supersede_reminders(connection, "p", {30: short}) == 1
        statuses = dict(connection.execute(select(notice.c.recipient_key, notice.c.status)).all())
    assert statuses == {"A000000001": "pending", "B999999999": "superseded"}


def test_a_parts_pending_reminders_of_an_earlier_stage_are_set_aside_and_nothing_else(engine):
    """A part of a plan (`within`) whose people are at two stages: each pending reminder of a
    stage its person has left is set aside, one still due or of someone else's part is kept."""
    short = {30: {"A1", "A2"}, 14: {"B1"}}
    with engine.begin() as connection:
        _pending_reminder(connection, "A1", 30)  # its stage: kept
        _pending_reminder(connection, "A2", 60)  # an earlier stage: set aside
        _pending_reminder(connection, "B1", 30)  # B1 is at 14 now: set aside
        _pending_reminder(connection, "C1", 30)  # not of this part: kept
        within = frozenset({"A1", "A2", "B1"})
        assert superseding.supersede_reminders(connection, "p", short, within) == 2
        statuses = dict(connection.execute(select(notice.c.recipient_key, notice.c.status)).all())
    assert statuses == {"A1": "pending", "A2": "superseded", "B1": "superseded", "C1": "pending"}


def test_a_part_with_no_pending_reminder_sets_nothing_aside_in_one_read(engine):
    """Defect found by bench/national.py: a part's night issued one UPDATE per 500 short people
    whatever was pending, each reading the plan's pending notices: 437 statements at 218,598
    short people, most of a no-op night's 164 s. With nothing pending, one read is all."""
    from sqlalchemy import event

    short = {30: {f"A{i:09d}" for i in range(1_200)}, 14: {f"B{i:09d}" for i in range(800)}}
    statements: list[str] = []
    with engine.begin() as connection:
        event.listen(connection, "before_cursor_execute",
                     lambda *args: statements.append(args[2]))  # fmt: skip
        within = frozenset(set().union(*short.values()))
        assert superseding.supersede_reminders(connection, "p", short, within) == 0
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
