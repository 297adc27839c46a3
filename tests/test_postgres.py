"""The ingest, compliance and notify paths on PostgreSQL: the same tests, the warehouse on PG."""

from __future__ import annotations

import pytest

# Collected again here, where `engine` below is the PostgreSQL warehouse.
from tests.test_cli import test_status_and_units_csv_contract  # noqa: F401
from tests.test_compliance import (  # noqa: F401
    test_h1_temporary_staff_exempt_and_left_out_of_rates,
    test_h3_complete_person_is_met_and_short_person_needs_nested_hours,
    test_records_of_people_not_on_roster_never_counted,
    test_rule4_course_on_deadline_counts_day_after_does_not,
    test_rule7_left_and_full_year_leave_are_exempt,
)
from tests.test_ingest import (  # noqa: F401
    test_bad_id_row_rejected_with_line_and_reason_rest_loads,
    test_big5_csv_and_xlsx_load_and_overlap_counts_once,
    test_corrected_record_updates_hours,
    test_h5_absence_over_a_third_counts_zero,
    test_reingest_same_file_changes_nothing,
    test_roster_replaces_snapshot_and_marks_gone,
    test_unknown_header_is_reported_and_nothing_loads,
)
from tests.test_notify import (  # noqa: F401
    test_reminder_reads_in_chinese_with_last_day,
    test_rule9_one_reminder_per_stage_never_twice,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_engine):
    return pg_engine
