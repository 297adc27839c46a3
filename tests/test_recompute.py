"""The recompute's own machinery: the roster's order, the roster read beside the sums, and the
cycle collector held off while a part's people are built as objects."""

from __future__ import annotations

import gc

import pytest

from learnhours import steps
from learnhours.steps import judging
from learnhours.steps.judging import compute, cycle_collection_paused
from learnhours.warehouse import plan_queries, roster_queries
from tests.test_agencies import CITY, DAY, DISTRICT, _load, _plan, government, member


def test_the_roster_comes_in_code_point_order_of_agency_unit_and_person(any_engine, tmp_path):
    # A linguistic collation puts "alpha" before "Zeta" and "b組" before "B組"; code point
    # order (SQLite's, Python's) does not, and it is the same on every database.
    people = government() + [
        member(CITY, unit, f"員{i}") for i, unit in enumerate(("alpha", "Zeta", "b組", "B組"))
    ]
    people += [member(DISTRICT, "人事室", f"區員{i}") for i in range(3)]
    _load(any_engine, tmp_path, people)
    with any_engine.connect() as connection:
        roster = [
            (m.agency_code, m.agency, m.unit, m.person_id)
            for m in roster_queries.members(connection)
        ]
    assert len(roster) == len(people)
    assert roster == sorted(roster)
    units = [unit for code, _agency, unit, _pid in roster if code == CITY]
    assert units.index("B組") < units.index("Zeta") < units.index("alpha") < units.index("b組")


def test_building_the_people_holds_the_cycle_collector_off_and_gives_it_back(
    engine, tmp_path, monkeypatch
):
    _load(engine, tmp_path, government())
    seen = []
    people_of = judging.people_of

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return people_of(*args, **kwargs)

    monkeypatch.setattr(judging, "people_of", watched)
    assert gc.isenabled()
    result = compute(engine, _plan(), DAY)
    assert len(result.people) == len(government())
    assert seen == [False] and gc.isenabled()

    gc.disable()  # whoever turned it off keeps it off
    try:
        assert compute(engine, _plan(), DAY).people
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_cycle_collector_comes_back_when_a_recompute_fails(engine, tmp_path, monkeypatch):
    _load(engine, tmp_path, government())

    def broken(*_args, **_kwargs):
        raise RuntimeError("the roster could not be read")

    monkeypatch.setattr(roster_queries, "roster_rows", broken)
    with pytest.raises(RuntimeError, match="the roster could not be read"):
        compute(engine, _plan(), DAY)  # the roster thread's failure is the recompute's
    assert gc.isenabled()
    with pytest.raises(ValueError), cycle_collection_paused():
        raise ValueError
    assert gc.isenabled()


def test_the_roster_is_read_on_its_own_connection_beside_the_sums(engine, tmp_path, monkeypatch):
    _load(engine, tmp_path, government())
    threads = {}
    rows, standings = roster_queries.roster_rows, plan_queries.standings_frame

    def roster(connection, *args):
        threads["roster"] = connection
        return rows(connection, *args)

    def sums(connection, *args):
        threads["sums"] = connection
        return standings(connection, *args)

    monkeypatch.setattr(roster_queries, "roster_rows", roster)
    monkeypatch.setattr(plan_queries, "standings_frame", sums)
    result = steps.compute(engine, _plan(), DAY)
    assert threads["roster"] is not threads["sums"]
    assert {p.member.name for p in result.people} == {p["姓名"] for p in government()}
