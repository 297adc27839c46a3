"""Ingest audit fixes: 0 h records say why, folder order by age, freshness from the last delivery."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from learnhours.ingest import ingest_file
from learnhours.notifiers.summary_facts import stale_reason
from learnhours.steps import files_under, ingest_paths
from learnhours.warehouse import record_queries
from learnhours.warehouse.batches import mark_seen
from learnhours.warehouse.schema import ingest_batch, learning_record, rejected_row
from tests.factories import export_file, new_id, record


def _age(path, days: int) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (when, when))


def test_r1_zero_digital_and_physical_with_empty_certified_keeps_a_reason(engine, tmp_path):
    row = record(new_id(), 認證時數="", 數位時數=0, 實體時數=0)
    report = ingest_file(engine, export_file(tmp_path, [row]))
    assert (report.loaded, report.rejected) == (1, 0)
    with engine.connect() as c:
        quantity, reason = c.execute(
            select(learning_record.c.quantity, learning_record.c.zero_reason)
        ).one()
    assert quantity == 0
    assert reason == "時數為 0：認證時數空白，數位時數、實體時數皆為 0"


def test_r1_all_hour_cells_zero_names_each(engine, tmp_path):
    ingest_file(engine, export_file(tmp_path, [record(new_id(), hours=0, 數位時數=0)]))
    with engine.connect() as c:
        assert c.execute(select(learning_record.c.zero_reason)).scalar_one() == (
            "時數為 0：認證時數、數位時數、實體時數皆為 0"
        )


def test_hours_at_24_a_day_load_and_over_is_rejected_naming_the_limit(engine, tmp_path):
    pid = new_id()
    rows = [
        record(pid, code="A", hours=24),
        record(pid, code="B", hours="24.5"),
        record(pid, code="C", hours=72, 上課起始日期="112-05-08"),
    ]  # 3 days: 72 h is the limit
    report = ingest_file(engine, export_file(tmp_path, rows))
    assert (report.loaded, report.rejected) == (2, 1)
    with engine.connect() as c:
        row = c.execute(select(rejected_row)).one()
    assert (row.line_no, row.column_name, row.value, row.person_id) == (3, "認證時數", "24.5", pid)
    assert "每天最多 24 小時，合計上限 24 小時" in row.reason


def test_end_before_start_in_xlsx_date_cells_shows_roc_dates(engine, tmp_path):
    bad = record(new_id(), 上課起始日期=date(2023, 3, 5), 上課結束日期=date(2023, 3, 1))
    report = ingest_file(engine, export_file(tmp_path, [bad, record(new_id())], "a.xlsx"))
    assert (report.loaded, report.rejected) == (1, 1)
    ((_, problem),) = report.problems
    assert (problem.column, problem.value) == ("上課結束日期", "112年3月1日")
    assert problem.reason == "上課結束日期「112年3月1日」早於上課起始日期「112年3月5日」"


def test_r5_folder_ingests_oldest_first_so_the_newest_export_wins(engine, tmp_path):
    pid = new_id()
    inbox = tmp_path / "inbox"
    corrected = export_file(inbox, [record(pid, hours=3)], "a-corrected.csv")
    older = export_file(inbox, [record(pid, hours=2)], "z-original.csv")
    _age(older, 10)
    _age(corrected, 1)
    assert files_under([inbox]) == [older, corrected]
    ingest_paths(engine, [inbox])
    with engine.connect() as c:
        assert c.execute(select(learning_record.c.quantity)).scalar_one() == Decimal(3)


def test_files_of_the_same_age_go_by_name_and_named_files_keep_their_order(tmp_path):
    inbox = tmp_path / "inbox"
    b, a = export_file(inbox, [], "b.csv"), export_file(inbox, [], "a.csv")
    os.utime(a, ns=(10**18, 10**18))
    os.utime(b, ns=(10**18, 10**18))
    assert files_under([inbox]) == [a, b]
    assert files_under([b, a]) == [b, a]


def _backdate_batches(engine, days: int) -> datetime:
    old = datetime.now(UTC) - timedelta(days=days)
    with engine.begin() as c:
        c.execute(update(ingest_batch).values(loaded_at=old, last_seen_at=old))
    return old


def _newest(engine):
    with engine.connect() as c:
        return record_queries.freshness(c).newest_batch


def test_same_export_delivered_again_keeps_the_data_fresh(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id())], "weekly.csv")
    ingest_file(engine, path)
    _backdate_batches(engine, 30)
    now = datetime.now(UTC)
    assert stale_reason(_newest(engine), 7, now)  # a month without any delivery: stale
    again = tmp_path / "weekly-refetched.csv"
    again.write_bytes(path.read_bytes())  # the quiet week's export: same content, new file
    assert ingest_file(engine, again).skipped
    assert stale_reason(_newest(engine), 7, now) == ""
    with engine.connect() as c:
        loaded, seen = c.execute(
            select(ingest_batch.c.loaded_at, ingest_batch.c.last_seen_at)
        ).one()
    assert seen > loaded  # loaded_at still says when it was loaded


def test_an_old_file_left_in_the_inbox_does_not_make_data_look_fresh(engine, tmp_path):
    path = export_file(tmp_path / "inbox", [record(new_id())], "old.csv")
    ingest_file(engine, path)
    old = _backdate_batches(engine, 30)
    _age(path, 30)  # the nightly run offers it again: it was delivered a month ago
    assert ingest_paths(engine, [tmp_path / "inbox"])[0].skipped
    assert stale_reason(_newest(engine), 7, datetime.now(UTC))
    assert abs(_newest(engine).replace(tzinfo=UTC) - old) < timedelta(days=1)


def test_mark_seen_moves_forward_only_and_ignores_the_roster(engine, tmp_path):
    from tests.factories import person, roster_file

    ingest_file(engine, export_file(tmp_path, [record(new_id())], "e.csv"))
    ingest_file(engine, roster_file(tmp_path, [person()]))
    old = _backdate_batches(engine, 30)
    with engine.connect() as c:
        roster_sha = c.execute(
            select(ingest_batch.c.sha256).where(ingest_batch.c.kind == "roster")
        ).scalar()
    assert mark_seen(engine, [roster_sha]) == 1
    assert stale_reason(_newest(engine), 7, datetime.now(UTC))  # a roster is not learning data
    assert mark_seen(engine, [roster_sha], old - timedelta(days=5)) == 0  # never back


def test_portal_sending_the_same_export_again_keeps_the_data_fresh(engine, tmp_path, monkeypatch):
    """The --fetch path: content already loaded is skipped before it reaches the inbox."""
    from dataclasses import replace

    from learnhours.emulator import PortalEmulator, serve
    from learnhours.extractors.site_profile import load_profile
    from learnhours.steps import fetch_to_inbox
    from tests.test_fetch import PASSWORD, USER, YEAR, agency_rows

    account = {"LEARNHOURS_PORTAL_USER": USER, "LEARNHOURS_PORTAL_PASSWORD": PASSWORD}
    inbox = tmp_path / "inbox"
    with serve(PortalEmulator({USER: PASSWORD}, agency_rows(), [])) as url:
        site = replace(load_profile("lifelong-portal"), base_url=url).with_network(
            connect_timeout_seconds=2, read_timeout_seconds=2, retries=0, min_interval_seconds=0
        )
        assert fetch_to_inbox(engine, site, inbox, *YEAR, account).saved
        ingest_paths(engine, [inbox])
        _backdate_batches(engine, 30)
        assert stale_reason(_newest(engine), 7, datetime.now(UTC))
        again = fetch_to_inbox(engine, site, tmp_path / "empty-inbox", *YEAR, account)
    assert not again.saved and again.skipped  # the quiet week: nothing new
    assert stale_reason(_newest(engine), 7, datetime.now(UTC)) == ""
