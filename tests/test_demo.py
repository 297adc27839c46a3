"""The demo's sample agency: the same people whatever day the demo runs."""

from datetime import date

from learnhours.demo_data import build_sample


def test_sample_is_the_same_agency_on_any_day():
    early = build_sample(2026, date(2026, 6, 30))
    late = build_sample(2026, date(2026, 11, 30))
    assert early.roster == late.roster
    late_keys = {(r["身分證字號"], r["課程代碼"], r["上課起始日期"]) for r in late.records}
    early_keys = {(r["身分證字號"], r["課程代碼"], r["上課起始日期"]) for r in early.records}
    assert early_keys < late_keys  # a growing set of the same records


def test_sample_only_holds_courses_registered_by_the_as_of_date():
    sample = build_sample(2026, date(2026, 3, 1))
    assert sample.records
    assert all(r["登錄日期"] <= "115-03-01" for r in sample.records)
