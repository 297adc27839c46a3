"""A plan of several agencies judged in shares, side by side (issue 17: past one machine): each
share's results are the whole plan's for its agencies, the night sends exactly what one worker
would, a re-run sends nothing, and two deliveries of one plan at once never send a notice twice."""

from __future__ import annotations

from datetime import date

import pytest

from learnhours import steps
from learnhours.flows.run_summary import plan_counts
from learnhours.ingest import ingest_file
from learnhours.notifiers import delivery as mailing
from learnhours.notifiers import ledger, summary_facts
from learnhours.notifiers.backends import MemoryBackend
from learnhours.notifiers.drafts import rendered
from learnhours.notifiers.reminders import plan_tonight
from learnhours.notifiers.summaries import Rollup
from learnhours.steps import compute, judging, send_plan, sending
from learnhours.steps.audiences import agency_hr
from learnhours.steps.mail import freshness
from learnhours.warehouse import plan_queries
from tests.factories import MAIL, export_file, record
from tests.test_agencies import (
    CITY,
    DAY,
    DISTRICT,
    SCHOOL,
    _city_plan,
    _load,
    _plan,
    _text,
    _workbook_rows,
    government,
    member,
)

MET = {"市人事主任", "市人事員", "區人事主任"}


def _bigger_government() -> list[dict[str, str]]:
    """The three agencies, each with a few more people, so every share has units and short
    people of its own."""
    people = government()
    for agency in (CITY, DISTRICT, SCHOOL):
        people += [member(agency, "總務處", f"{agency[-2:]}總務{i}", head=i == 0) for i in range(3)]
    return people


def _in_shares(engine, plan, backend, count=2) -> dict:
    """The night as the flow runs it in shares for workers (one after another here); its
    counts."""
    return plan_counts(send_plan(engine, plan, DAY, MAIL, backend=backend, count=count))


def test_agencies_go_in_shares_of_about_equal_headcount(engine, tmp_path):
    _load(engine, tmp_path, _bigger_government())  # city 7, district 5, school 6 people
    plan = _plan()
    two = steps.agency_parts(engine, plan, count=2)
    assert sorted(a for share in two for a in share) == sorted([CITY, DISTRICT, SCHOOL])
    assert two == [(CITY,), (DISTRICT, SCHOOL)]  # the largest alone, the two others together
    assert len(steps.agency_parts(engine, plan, count=5)) == 3  # never an empty share
    assert steps.agency_parts(engine, plan, count=1) == [None]  # one worker: the whole plan


def test_one_partitioner_cuts_contiguous_runs_of_about_equal_headcount():
    heads = {f"A{i:03d}": 1 + (i * 37) % 50 for i in range(200)}
    for count in (2, 3, 4, 8):
        parts = judging.cut_parts(heads, count=count)
        assert [k for part in parts for k in part] == sorted(heads)  # every agency once, in order
        sizes = [sum(heads[k] for k in part) for part in parts]
        assert len(parts) == count and max(sizes) - min(sizes) <= 2 * max(heads.values())
    assert judging.cut_parts(heads, people=sum(heads.values())) == [None]
    assert len(judging.cut_parts(heads, people=1_000)) == -(-sum(heads.values()) // 1_000)


def test_a_roster_of_one_agency_has_nothing_to_share(engine, tmp_path):
    _load(engine, tmp_path, [member(CITY, "人事室", f"員{i}") for i in range(4)])
    assert steps.agency_parts(engine, _plan(), count=4) == [None]


def test_each_share_judges_its_agencies_as_the_whole_plan_does(any_engine, tmp_path):
    engine = any_engine
    _load(engine, tmp_path, _bigger_government(), met=MET)
    plan = _plan()  # every agency of the roster
    whole = compute(engine, plan, DAY)
    parts = [compute(engine, plan, DAY, part) for part in steps.agency_parts(engine, plan, count=2)]

    def people(results):
        return sorted((p.member.person_id, p.status, p.needed, tuple(sorted(p.hours.items())))
                      for r in results for p in r.people)  # fmt: skip

    def units(results):
        return sorted((u.key, u.headcount, u.met, u.rate, u.tier) for r in results for u in r.units)

    def agencies(results):
        return sorted((a.key, a.headcount, a.met, a.rate, a.tier)
                      for r in results for a in r.agencies)  # fmt: skip

    assert people(parts) == people([whole])
    assert units(parts) == units([whole])
    assert agencies(parts) == agencies([whole])
    assert all(p.several_agencies for p in parts)  # a share of one agency still names it


def _two_warehouses(engine, twin, tmp_path) -> None:
    """The same government in two warehouses: one night each way, side by side."""
    people = _bigger_government()
    for warehouse, folder in ((engine, "a"), (twin, "b")):
        (tmp_path / folder).mkdir()
        _load(warehouse, tmp_path / folder, people, met=MET)


def _sent(backend: MemoryBackend) -> list[tuple[str, str]]:
    return sorted((str(m["To"]), str(m["Subject"])) for m in backend.outbox)


def _rollup_of(backend: MemoryBackend):
    (message,) = [m for m in backend.outbox if str(m["To"]) == "hr@city.gov.tw"]
    return _text(message), _workbook_rows(message)


def test_a_night_in_shares_sends_what_one_worker_sends_and_a_rerun_nothing(engine, twin, tmp_path):
    _two_warehouses(engine, twin, tmp_path)
    plan = _city_plan()
    one = MemoryBackend()
    whole = plan_counts(send_plan(engine, plan, DAY, MAIL, backend=one))
    shared = MemoryBackend()
    counts = _in_shares(twin, plan, shared)

    assert _sent(shared) == _sent(one)
    same = ("people", "met", "short", "exempt", "stage", "queued", "mail", "unavailable")
    assert {k: counts[k] for k in same} == {k: whole[k] for k in same}
    assert whole["queued"] > 0 and sorted(map(str, counts["units"])) == sorted(
        map(str, whole["units"])
    )

    (one_text, one_book), (shared_text, shared_book) = _rollup_of(one), _rollup_of(shared)
    assert shared_book == one_book
    # The agencies' summaries went out with their parts, before the roll-up: it counts them,
    # whether the plan was judged whole or in shares (one route).
    assert "- 人事室摘要：2 封\n" in shared_text
    assert shared_text == one_text
    assert "2 個機關" in shared_text  # each agency's HR got its own summary, from its share

    again = MemoryBackend()
    _in_shares(twin, plan, again)
    assert again.outbox == []


def test_mail_left_pending_by_a_night_the_server_was_down_goes_out_once_in_shares(engine, tmp_path):
    people = _bigger_government()
    _load(engine, tmp_path, people, met=MET)
    plan = _city_plan()
    down = MemoryBackend(faults={p["電子郵件"]: "not_attempted" for p in people})
    down.faults |= {"hr@city.gov.tw": "not_attempted"}
    send_plan(engine, plan, DAY, MAIL, backend=down)
    with engine.connect() as connection:
        pending = ledger.listing(connection, "pending", plan.id)
    assert pending and down.outbox == []

    backend = MemoryBackend()
    _in_shares(engine, plan, backend)
    ids = [str(m["Message-ID"]) for m in backend.outbox]
    assert len(ids) == len(set(ids)) == len(pending)
    with engine.connect() as connection:
        assert ledger.listing(connection, "pending", plan.id) == []


class _Overtaken(MemoryBackend):
    """A backend during whose first message another worker delivers the same plan."""

    def __init__(self, engine, plan_id: str, other: MemoryBackend) -> None:
        super().__init__()
        self.engine, self.plan_id, self.other, self.overtaken = engine, plan_id, other, False

    def deliver(self, messages):
        for delivery in super().deliver(messages):
            if not self.overtaken:
                self.overtaken = True
                mailing.deliver(self.engine, self.other, self.plan_id)
            yield delivery


def test_two_deliveries_of_one_plan_at_once_send_each_notice_once(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(mailing, "MARK_EVERY", 2)  # several chunks from a handful of notices
    _load(engine, tmp_path, _bigger_government(), met=MET)
    plan = _plan()
    result = compute(engine, plan, DAY)
    fresh = freshness(engine, plan, DAY)
    ctx = MAIL.context(plan, DAY, fresh.data_through, fresh.stale, result.several_agencies)
    tonight = plan_tonight(ctx, result.people, result.units)
    with engine.begin() as connection:
        queued = ledger.enqueue(connection, plan.id, rendered(tonight), DAY)
    assert queued > 4
    other = MemoryBackend()
    first = _Overtaken(engine, plan.id, other)
    mailing.deliver(engine, first, plan.id)
    ids = [m["Message-ID"] for m in [*first.outbox, *other.outbox]]
    assert other.outbox and len(first.outbox) == 2  # the other took every later chunk
    assert sorted(ids) == sorted(set(ids)) and len(ids) == queued


@pytest.mark.parametrize("command", [["status"], ["units"], ["units", "--by", "agency"]])
@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_status_and_units_read_the_records_once_and_print_every_agency_row_by_row(
    engine, tmp_path, capsys, monkeypatch, command, fmt
):
    """`status` and `units` judge a nation in columns, its records read once (memory holds the
    columns, not a person object each), and write the whole plan, row for row, in every
    format."""
    from learnhours.cli import main
    from tests.conftest import ROOT

    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    _load(engine, tmp_path, _bigger_government(), met=MET)
    argv = ["--database-url", str(engine.url), *command, "--plan", "city-government-2026",
            "--as-of", DAY.isoformat(), "--format", fmt]  # fmt: skip
    assert main(argv) == 0
    whole = capsys.readouterr().out
    seen = []
    real = judging.compute

    def counted(*args, **kwargs):
        seen.append(args[3] if len(args) > 3 else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "compute", counted)
    assert main(argv) == 0
    assert capsys.readouterr().out == whole
    assert seen == [None]  # the whole plan, once
    assert whole.count(CITY) > 0 and whole.count(SCHOOL) > 0


def test_a_plan_of_one_agency_is_judged_in_one_part(engine, tmp_path):
    _load(engine, tmp_path, _bigger_government(), met=MET)
    plan = _plan(who=[f"機關代碼 = {DISTRICT}"])
    assert steps.agency_parts(engine, plan, people=2) == [None]
    assert not compute(engine, plan, DAY).several_agencies


def test_a_night_a_part_at_a_time_sends_what_the_shares_send_and_a_rerun_nothing(
    engine, twin, tmp_path
):
    """A plan of many agencies goes a part at a time in one process (the CLI's notify, the
    flow with one worker), as the shares do on several: the same mail, the same counts."""
    _two_warehouses(engine, twin, tmp_path)
    plan = _plan()
    shared = MemoryBackend()
    counts = _in_shares(engine, plan, shared)
    seen: list[tuple[str, ...] | None] = []
    in_parts = MemoryBackend()
    night = send_plan(twin, plan, DAY, MAIL, backend=in_parts, people=4,
                      on_part=lambda _night, part: seen.append(part.part))  # fmt: skip

    assert seen == [(CITY,), (DISTRICT,), (SCHOOL,)]  # 5-7 people each
    assert _sent(in_parts) == _sent(shared)
    assert _rollup_of(in_parts) == _rollup_of(shared)
    assert night.queued == counts["queued"] > 0
    assert night.delivered.counts["sent"] == len(shared.outbox)
    assert night.summaries_queued and night.summary_note == ""

    again = MemoryBackend()
    night = send_plan(twin, plan, DAY, MAIL, backend=again, people=4)
    assert again.outbox == []
    assert night.summary_note == sending.SUMMARY_WAS_SENT


def test_a_plan_of_few_people_is_sent_whole(engine, tmp_path):
    _load(engine, tmp_path, _bigger_government(), met=MET)
    backend = MemoryBackend()
    seen: list = []
    send_plan(engine, _plan(), DAY, MAIL, backend=backend,
              on_part=lambda _night, part: seen.append(part.part))  # fmt: skip
    assert seen == [None] and backend.outbox


def test_the_rollup_parts_add_up_to_the_whole_plan_and_hold_no_person(engine, tmp_path):
    """What a share hands back for the roll-up (over Dask, into Prefect) is figures: every
    agency's and unit's, summed to the whole plan's, and no person's ID or name (addresses:
    the agencies' HR contacts only)."""
    import pickle

    from learnhours.ingest import ingest_file
    from tests.factories import export_file, record

    people = _bigger_government()
    _load(engine, tmp_path, people, met=MET)
    moved = next(p for p in people if p["姓名"] == "區人事員")
    ingest_file(engine, export_file(tmp_path, [record(moved["身分證字號"], name="區人事員",
                                                      code="X9", day=date(2026, 4, 1),
                                                      服務機關代碼=CITY)],
                                    "late.csv"))  # fmt: skip
    plan = _plan()
    reports: list = []
    send_plan(engine, plan, DAY, MAIL, backend=MemoryBackend(), count=2,
              on_part=lambda _night, part: reports.append(part))  # fmt: skip
    parts = [r.rollup for r in reports]
    whole = compute(engine, plan, DAY)
    with engine.connect() as connection:
        contacts = agency_hr(connection, whole)
        mismatched = plan_queries.agency_mismatches(connection, plan)
    expected = Rollup.of(whole.agencies, contacts, whole.people, mismatched)

    assert len(parts) == 2 and all(p is not None for p in parts)
    combined = Rollup.combined(p for p in parts if p is not None)
    assert combined == expected
    assert (combined.short, combined.other_agency) == (
        sum(p.status == "short" for p in whole.people),
        1,
    )
    assert len(combined.contacts) == 3
    wire = pickle.dumps([r.private() for r in reports])  # what a worker hands back, whole
    for p in people:  # the agencies' HR contacts are the roll-up's: theirs only
        theirs = () if p["角色"] else (p["電子郵件"],)
        for value in (p["身分證字號"], p["姓名"], *theirs):
            assert value.encode() not in wire


def test_notify_command_a_part_at_a_time_says_and_ledgers_what_the_whole_plan_does(
    engine, twin, tmp_path, capsys, monkeypatch
):
    from learnhours.cli import main
    from tests.conftest import ROOT

    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    people = _bigger_government()
    outputs, ledgers, shares = [], [], []
    real = sending.judge_part

    def counted(*args, **kwargs):
        shares.append(args[4].share)
        return real(*args, **kwargs)

    for warehouse, folder, part in ((engine, "a", None), (twin, "b", 4)):
        (tmp_path / folder).mkdir()
        _load(warehouse, tmp_path / folder, people, met=MET)
        if part:
            monkeypatch.setattr(sending, "NIGHT_PART_PEOPLE", part)
            monkeypatch.setattr(sending, "judge_part", counted)
        argv = ["--database-url", str(warehouse.url), "notify", "--plan", "city-government-2026",
                "--as-of", DAY.isoformat()]  # fmt: skip
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
        with warehouse.connect() as connection:
            rows = ledger.listing(connection, None, "city-government-2026")
        ledgers.append(sorted((r.kind, r.to_address, r.status) for r in rows))
    assert outputs[0] == outputs[1] and "新排入" in outputs[0]
    assert ledgers[0] == ledgers[1] and ledgers[0]
    assert shares == [(CITY,), (DISTRICT,), (SCHOOL,)]  # an agency of 5-7 people a part


def test_a_part_s_people_are_let_go_before_the_next_part_is_judged(engine, tmp_path, monkeypatch):
    """What bounds a national night's memory: when a part is judged, no earlier part's results
    (its people, its drafts) are held by the night any more."""
    import gc
    import weakref

    _load(engine, tmp_path, _bigger_government(), met=MET)
    earlier: list[weakref.ref] = []
    held_when_judging: list[int] = []
    real = sending.judge_part

    def judged(*args, **kwargs):
        gc.collect()
        held_when_judging.append(sum(ref() is not None for ref in earlier))
        earlier.append(weakref.ref(args[4]))  # the part's judged people
        return real(*args, **kwargs)

    monkeypatch.setattr(sending, "judge_part", judged)
    send_plan(engine, _plan(), DAY, MAIL, backend=MemoryBackend(), people=4)
    assert len(earlier) == 3 and held_when_judging == [0, 0, 0]  # each part's results


def test_notify_dry_run_a_part_at_a_time_says_what_the_whole_plan_does(
    engine, twin, tmp_path, capsys, monkeypatch
):
    """`notify --dry-run` of a national plan judges it a part at a time too (it held the whole
    plan's people and drafts: 1.6 GB at 400k people); it says what the whole plan's run says,
    before the night and after it, and writes nothing."""
    from learnhours.cli import main
    from tests.conftest import ROOT

    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    people = _bigger_government()
    computed = []
    real = sending.judge_part

    def counted(*args, **kwargs):
        computed.append(args[4].share)
        return real(*args, **kwargs)

    monkeypatch.setattr(sending, "judge_part", counted)
    said: dict[str, list[str]] = {}
    dry_runs: list[list] = []
    for warehouse, folder, part in ((engine, "a", None), (twin, "b", 4)):
        (tmp_path / folder).mkdir()
        _load(warehouse, tmp_path / folder, people, met=MET)
        if part:
            monkeypatch.setattr(sending, "NIGHT_PART_PEOPLE", part)
        argv = ["--database-url", str(warehouse.url), "notify", "--plan", "city-government-2026",
                "--as-of", DAY.isoformat()]  # fmt: skip
        for when in ("before", "after"):
            if when == "after":
                assert main(argv) == 0  # the night itself: everything of today is sent
                capsys.readouterr()
            with warehouse.connect() as connection:
                before = ledger.listing(connection, None, "city-government-2026")
            computed.clear()
            assert main([*argv, "--dry-run"]) == 0
            said.setdefault(when, []).append(capsys.readouterr().out)
            with warehouse.connect() as connection:
                assert ledger.listing(connection, None, "city-government-2026") == before
            dry_runs.append(list(computed))
    for whole_said, parts_said in (said["before"], said["after"]):
        # The same lines (a part's reminders and digests come together), the same totals.
        assert sorted(whole_said.splitlines()) == sorted(parts_said.splitlines())
        assert whole_said.splitlines()[-2:] == parts_said.splitlines()[-2:]
    assert "另寄人事室摘要" in said["before"][0] and "封新通知" in said["before"][0]
    assert "  寄 " in said["before"][0] and "  寄 " not in said["after"][0]
    assert "今天的人事室摘要已寄過" in said["after"][0]
    whole, whole_after, parts, parts_after = dry_runs
    assert whole == whole_after == [None]  # the plan sent whole
    assert parts == parts_after == [(CITY,), (DISTRICT,), (SCHOOL,)]  # an agency a part


def test_a_part_s_summaries_read_their_own_agencies_records_only(engine, tmp_path):
    """A part's summaries (its agencies') read the mismatched records of its own agencies, and
    neither the warehouse's rejected rows nor the people missing from the roster (the roll-up's
    lists): at 400k people every part read the whole plan's."""
    people = _bigger_government()
    _load(engine, tmp_path, people, met=MET)
    moved = next(p for p in people if p["姓名"] == "區人事員")
    late = [record(moved["身分證字號"], name="區人事員", code="X9", day=date(2026, 4, 1),
                   服務機關代碼=CITY),
            record("A123456788", name="錯號", code="X9", day=date(2026, 4, 1))]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, late, "late.csv"))
    plan = _plan()
    with engine.connect() as connection:
        whole = summary_facts.gather(connection, plan, (), None)
        district = summary_facts.gather(connection, plan, (), None, share=(DISTRICT,))
        others = summary_facts.gather(connection, plan, (), None, share=(CITY, SCHOOL))
    assert list(whole.mismatches) == list(district.mismatches) == [moved["身分證字號"]]
    assert others.mismatches == {}
    assert len(whole.rejected) == 1 and district.rejected == others.rejected == []

    backend = MemoryBackend()
    send_plan(engine, plan, DAY, MAIL, backend=backend, people=4)
    summaries = {str(m["To"]): _text(m) for m in backend.outbox if "摘要" in str(m["Subject"])}
    district_hr = next(p["電子郵件"] for p in people if p["姓名"] == "區人事主任")
    line = "學習紀錄的服務機關代碼與名冊不同：1 人（區人事員（人事室）：379680000A 1 筆）"
    assert line in summaries.pop(district_hr)
    rollup = summaries.pop("hr@city.gov.tw")
    assert "學習紀錄的服務機關代碼與名冊不同：1 人" in rollup and "A123456788" not in rollup
    assert summaries and not any("服務機關代碼與名冊不同" in text for text in summaries.values())


def test_a_night_in_parts_reads_the_records_once(engine, tmp_path, monkeypatch):
    """The parts split the rendering and sending, not the reading: a night of three parts sums
    the records once (at 400k people each part re-read the records table: 120 s against 22 s)."""
    _load(engine, tmp_path, _bigger_government(), met=MET)
    reads = []
    real = plan_queries.standings_frame

    def counted(*args, **kwargs):
        reads.append(args[3] if len(args) > 3 else kwargs.get("agencies"))
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_queries, "standings_frame", counted)
    seen = []
    night = send_plan(engine, _plan(), DAY, MAIL, backend=MemoryBackend(), people=4,
                      on_part=lambda _night, part: seen.append(part.part))  # fmt: skip
    assert seen == [(CITY,), (DISTRICT,), (SCHOOL,)] and night.queued
    assert reads == [None]  # the whole plan, once


def test_a_share_written_for_a_worker_reads_back_as_the_part_the_run_judged(any_engine, tmp_path):
    """What a Dask worker sends is its slice of the people the run judged, read from the
    warehouse (the one place every worker reaches); the night's shares are deleted after."""
    from learnhours.warehouse import share_store
    from learnhours.warehouse.schema import judged_share

    engine = any_engine
    _load(engine, tmp_path, _bigger_government(), met=MET)
    plan = _plan()
    judged = compute(engine, plan, DAY)
    parts = steps.agency_parts(engine, plan, count=2)
    with engine.begin() as connection:
        share_store.put(connection, plan.id, "night1", [judged.part(p).frame for p in parts])
    for number, part in enumerate(parts):
        with engine.connect() as connection:
            frame = share_store.take(connection, "night1", number)
        back, there = steps.judged_people(plan, DAY, frame, part), judged.part(part)
        assert back.frame.equals(there.frame) and back.share == part
        assert back.unit_figures == there.unit_figures
        assert back.agency_figures == there.agency_figures
        assert [p.member.person_id for p in back.people] == [
            p.member.person_id for p in there.people
        ]
    with engine.begin() as connection:
        share_store.clear(connection, "night1")
    with engine.connect() as connection:
        assert connection.execute(judged_share.select()).all() == []
