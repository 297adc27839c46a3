"""plan_queries.standings: one GROUP BY over the records, each distinct SUM once, every sum
rounded to the 0.01 h as it always was (a float, rounded), on SQLite and PostgreSQL alike."""

import random
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event

from learnhours.plans import find_plan
from learnhours.plans.files import load_plan
from learnhours.transforms.compiled_rules import assess, assess_person
from learnhours.transforms.compliance import NO_STANDING, Member, Standing
from learnhours.warehouse import plan_queries
from learnhours.warehouse.schema import ingest_batch, learning_record
from tests.factories import new_id
from tests.test_rules import BUNDLE, miaoli_with_bundle

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "plans" / "examples" / "city-government.yaml"


def _store(engine, rows: list[dict]) -> None:
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(
            ingest_batch.insert().values(
                id=1, file_name="t", sha256="0" * 64, kind="agency_export", loaded_at=now,
                last_seen_at=now, rows_read=len(rows), rows_loaded=len(rows), rows_updated=0,
                rows_duplicate=0, rows_rejected=0,
            )
        )  # fmt: skip
        c.execute(
            learning_record.insert(),
            [
                {
                    "course_key": f"code:{n}",
                    "session": "1",
                    "start_date": r["day"],
                    "end_date": r["day"],
                    "name": "員工",
                    "course_code": r.get("code", str(n)),
                    "course_name": r.get("course", "課程"),
                    "unit": r.get("unit", "hour"),
                    "source_kind": "agency_export",
                    "batch_id": 1,
                    "line_no": n + 2,
                    "digest": "0",
                    "person_id": r["pid"],
                    "quantity": Decimal(r["quantity"]),
                    "category_code": r.get("category", 12),
                    "zero_reason": r.get("zero"),
                    "digital_share": Decimal(r.get("share", 0)),
                }  # fmt: skip
                for n, r in enumerate(rows)
            ],
        )


def _sums_in_standings(engine, plan, as_of):
    with engine.connect() as c:
        found = plan_queries.standings(c, plan, as_of)
    sql = str(plan_queries.standings_sums(plan, as_of).query.compile(dialect=engine.dialect))
    return found, sql.lower().count("sum(")


def test_a_requirement_over_every_record_is_summed_once_with_the_tracks_total(engine):
    plan = find_plan("national-2026")  # `total` counts every record, as the track's `*` does
    a, b = new_id(), new_id()
    _store(
        engine,
        [
            {"pid": a, "day": date(2026, 3, 1), "quantity": "2.5", "category": 501},
            {"pid": a, "day": date(2026, 4, 1), "quantity": "1.25", "category": 12},
            {"pid": a, "day": date(2026, 4, 2), "quantity": "9", "zero": "缺課"},
            {"pid": b, "day": date(2026, 5, 1), "quantity": "3", "unit": "day"},
        ],
    )
    (now, judged), sums = _sums_in_standings(engine, plan, date(2026, 12, 31))
    assert sums == len(plan.track_views[0].checks)  # not one more for `main/*`
    assert now[a].hours == {
        "main/total": Decimal("3.75"), "main/policy": Decimal("2.50"),
        "main/environment": Decimal(0), "main/democracy": Decimal(0), "main/gender": Decimal(0),
        "main/*": Decimal("3.75"),
    }  # fmt: skip
    assert now[b].hours["main/total"] == now[b].hours["main/*"] == Decimal("18.00")
    assert judged[a] is now[a] and now[a].bundle == {}


def _digital_rows(pid: str) -> list[dict]:
    # Shares of 4 decimals times hours of 2: sums of 6 decimals, rounded to the 0.01 h.
    return [
        {"pid": pid, "day": date(2026, 2, 1), "quantity": "1.37", "share": "0.3333"},
        {"pid": pid, "day": date(2026, 3, 1), "quantity": "2.75", "share": "0.6667"},
        {"pid": pid, "day": date(2026, 11, 20), "quantity": "0.33", "share": "0.5"},
    ]


def _check_digital(engine) -> None:
    plan = load_plan(CITY, 2026)
    a = new_id()
    _store(engine, _digital_rows(a))
    (now, judged), _sums = _sums_in_standings(engine, plan, date(2026, 12, 31))
    digital = next(c.key for c in plan.checks if c.mode == "digital")
    # The float of the exact sum, rounded: what the previous conversion (SQLAlchemy's Float,
    # then round to 0.01) gave.
    before = Decimal("1.37") * Decimal("0.3333") + Decimal("2.75") * Decimal("0.6667")
    late = Decimal("0.33") * Decimal("0.5")  # after the judge date (09-30)
    assert now[a].hours[digital] == plan_queries._hours(float(before + late)) == Decimal("2.46")
    assert judged[a].hours[digital] == plan_queries._hours(float(before)) == Decimal("2.29")
    assert now[a].hours["main/*"] == now[a].hours["main/total"] == Decimal("4.45")
    assert judged[a].hours["main/*"] == Decimal("4.12")


def test_digital_sums_of_many_decimals_round_as_before_on_sqlite(engine):
    _check_digital(engine)


@pytest.mark.postgres
def test_digital_sums_of_many_decimals_round_as_before_on_postgresql(pg_engine):
    _check_digital(pg_engine)


# --- explain: one person's standings, by the same SQL over their records only -------------------


def _many_records(people: list[str]) -> list[dict]:
    """Records of every kind the plans below tell apart: codes inside and outside each figure,
    course names a requirement looks for, bundle courses, days and credits, zero-hour records,
    digital shares, over two years each side of every judge date and window."""
    rng = random.Random(20261207)  # the same records every run
    categories = [501, 339, 393, 502, 503, 7, 521, 522, 540, 12, None]
    names = ["課程", "資安專業課程", "資安通識", "CEDAW導論", "公文寫作"]
    rows = []
    for pid in people:
        for year in (2017, 2018, 2025, 2026):
            for _ in range(rng.randrange(0, 9)):
                row = {
                    "pid": pid,
                    "day": date(year, rng.randrange(1, 13), rng.randrange(1, 29)),
                    "quantity": rng.choice(["0.5", "1", "1.25", "2", "3", "4"]),
                    "category": rng.choice(categories),
                    "course": rng.choice(names),
                    "unit": rng.choice(["hour", "hour", "hour", "day", "credit"]),
                    "share": rng.choice(["0", "0.5", "1"]),
                }
                if rng.random() < 0.1:
                    row["zero"] = "缺課"
                if rng.random() < 0.3:
                    row["code"] = rng.choice(BUNDLE)["code"]
                rows.append(row)
    # The bundle completed by one person before the judge date, by another after it, and by a
    # third but for one course.
    for pid, day, courses in [
        (people[0], date(2018, 3, 1), BUNDLE),
        (people[1], date(2018, 10, 15), BUNDLE),
        (people[2], date(2018, 3, 1), BUNDLE[1:]),
    ]:
        rows += [{"pid": pid, "day": day, "quantity": "1", "code": c["code"]} for c in courses]
    return rows


EXPLAINED_PLANS = {
    "national": (lambda: find_plan("national-2026"), date(2026, 11, 23)),
    "judge-date-and-digital": (lambda: load_plan(CITY, 2026), date(2026, 12, 31)),
    "tracks": (
        lambda: load_plan(ROOT / "plans/examples/university.yaml", 2026),
        date(2026, 12, 31),
    ),
    "two-year-window": (
        lambda: load_plan(ROOT / "plans/examples/infosec.yaml", 2026),
        date(2026, 8, 1),
    ),
    "bundle": (miaoli_with_bundle, date(2018, 12, 31)),
}


@pytest.mark.parametrize("name", sorted(EXPLAINED_PLANS))
def test_a_persons_standing_from_their_own_records_is_theirs_in_the_whole_plan(any_engine, name):
    plan_of, as_of = EXPLAINED_PLANS[name]
    plan = plan_of()
    people = [new_id() for _ in range(8)]
    _store(any_engine, _many_records(people))
    with any_engine.connect() as c:
        now, judged = plan_queries.standings(c, plan, as_of)
        assert len(now) > 1  # the whole plan's people, several of them
        if name == "bundle":  # completed now, and at the judge date
            assert now[people[1]].bundle == {"main": True} != judged[people[1]].bundle
        for pid in [*people, new_id()]:  # and someone without records
            alone = plan_queries.standings(c, plan, as_of, person_id=pid)
            expected = ({pid: now[pid]}, {pid: judged[pid]}) if pid in now else ({}, {})
            assert alone == expected, pid


def test_one_persons_standings_read_only_their_records(engine):
    plan = load_plan(CITY, 2026)
    a, b = new_id(), new_id()
    _store(engine, [{"pid": pid, "day": date(2026, 3, 1), "quantity": "2"} for pid in (a, b)])
    seen: list[tuple[str, object]] = []

    def statement(_conn, _cursor, sql, parameters, *_args) -> None:
        seen.append((sql, parameters))

    event.listen(engine, "before_cursor_execute", statement)
    try:
        with engine.connect() as c:
            now, _judged = plan_queries.standings(c, plan, date(2026, 12, 31), person_id=a)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert set(now) == {a}
    ((sql, parameters),) = [(s, p) for s, p in seen if "GROUP BY" in s]
    assert "learning_record.person_id = ?" in sql and a in parameters and b not in parameters
    # SQLite finds the person's rows by the records' key (it leads with the person): a search of
    # that index, not a scan of every record.
    with engine.connect() as c:
        steps = [row[-1] for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)]
    assert any(
        step.startswith("SEARCH learning_record USING INDEX") and "person_id=?" in step
        for step in steps
    ), steps


# --- assess: what is worked out once per recompute gives what each person's own working gives ---


def _member(pid: str, **changes) -> Member:
    fields = {
        "person_id": pid, "name": "員工", "unit": "人事室", "is_supervisor": False,
        "category": "編制內", "left_on": None, "leave_from": None, "leave_to": None,
        "email": None,
    }  # fmt: skip
    return Member(**{**fields, **changes})


def _miaoli_hours(**figures: str) -> Standing:
    hours = {f"main/{rid}": Decimal(v) for rid, v in figures.items()}
    return Standing({**hours, "main/*": hours.get("main/total", Decimal(0))})


def test_threshold_below_the_target_is_what_the_penalty_checks_judged_now_or_apart():
    plan = find_plan("miaoli-zhunan-2018")  # gender: target 4, outcome threshold 2; cedaw 1, 0
    enough = {"total": "20", "policy": "1", "environment": "4", "democracy": "5"}
    floors = _miaoli_hours(**enough, gender="2")
    targets = _miaoli_hours(**enough, gender="4", cedaw="1")
    a, b, c, d = _member("A1"), _member("B1"), _member("C1", is_supervisor=True), _member("D1")
    now = {"A1": floors, "B1": targets, "C1": floors}
    after = date(2018, 9, 1)  # past the judge date: penalties are due
    people = assess(plan, [a, b, c, d], now, now, after)
    by_id = {p.member.person_id: p for p in people}
    assert by_id["A1"].status == "short" and by_id["A1"].judged_requirements_met
    assert not by_id["A1"].judged_met and "申誡1次" not in by_id["A1"].outcomes
    assert by_id["B1"].status == "met" and by_id["B1"].judged_met
    assert by_id["C1"].judged_requirements_met and not by_id["C1"].judged_met
    assert by_id["D1"].gaps["gender"] == Decimal(4) and not by_id["D1"].judged_requirements_met
    assert by_id["D1"].outcomes == ["申誡1次"]
    # Judged apart (a judge-date window of its own): the judged hours decide, not the current.
    judged = {"A1": targets, "B1": floors}
    apart = {p.member.person_id: p for p in assess(plan, [a, b], now, judged, after)}
    assert apart["A1"].judged_met and apart["A1"].status == "short"
    assert apart["B1"].judged_requirements_met and not apart["B1"].judged_met
    for p in [*people, *apart.values()]:
        pid = p.member.person_id
        alone = assess_person(
            plan, p.member, now.get(pid, NO_STANDING),
            (judged if p in apart.values() else now).get(pid, NO_STANDING), after,
        )  # fmt: skip
        assert (alone.status, alone.hours, alone.gaps, alone.needed, alone.judged_met) == (
            p.status,
            p.hours,
            p.gaps,
            p.needed,
            p.judged_met,
        )
        assert (alone.judged_requirements_met, alone.outcomes, alone.total) == (
            p.judged_requirements_met, p.outcomes, p.total
        )  # fmt: skip


def test_tracks_with_conditions_are_chosen_per_person_and_outsiders_shown_by_the_first():
    plan = load_plan(ROOT / "plans" / "examples" / "university.yaml", 2026)  # by 人員類別
    people = [_member("P1"), _member("C1", category="約聘"), _member("X1", category="臨時")]
    by_id = {p.member.person_id: p for p in assess(plan, people, {}, {}, date(2026, 12, 31))}
    assert [by_id[pid].track.id for pid in ("P1", "C1", "X1")] == [
        "permanent",
        "contract",
        "permanent",
    ]
    assert by_id["X1"].status == "exempt" and by_id["C1"].status == "short"
