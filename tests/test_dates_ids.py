"""ROC dates, national IDs and the working-day calendar."""

from datetime import date

import pytest

from learnhours.taipei import roc
from learnhours.transforms.dates import DateError, parse_date
from learnhours.transforms.ids import check_digit, is_valid_id, mask_id
from learnhours.transforms.workdays import current_stage, last_day_registered_in_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("112-03-01", date(2023, 3, 1)),
        ("112/03/01", date(2023, 3, 1)),
        ("1120301", date(2023, 3, 1)),
        ("民國112年3月1日", date(2023, 3, 1)),
        ("112年3月1日", date(2023, 3, 1)),
        ("１１２-０３-０１", date(2023, 3, 1)),
        (" 112-3-1 09:00 ", date(2023, 3, 1)),
        ("99-01-05", date(2010, 1, 5)),
        ("0990105", date(2010, 1, 5)),
        ("100/12/31", date(2011, 12, 31)),
        ("101-02-29", date(2012, 2, 29)),
        ("2023-03-01", date(2023, 3, 1)),
        ("", None),
    ],
)
def test_roc_dates_in_every_shape(text, expected):
    assert parse_date(text) == expected


def test_gregorian_text_in_elearning_data():
    assert parse_date("2023/03/01", gregorian=True) == date(2023, 3, 1)


@pytest.mark.parametrize("text", ["112-02-30", "112-13-01", "明天", "112-02"])
def test_impossible_dates_are_errors(text):
    with pytest.raises(DateError):
        parse_date(text)


def test_roc_rendering():
    assert roc(date(2023, 8, 31)) == "112年8月31日"


def test_national_id_checksum():
    assert is_valid_id("A123456789")
    assert not is_valid_id("A123456788")
    assert not is_valid_id("A323456789")  # second digit must be 1/2/8/9
    assert is_valid_id("A12345678" + check_digit("A12345678"))
    assert mask_id("A123456789") == "A12****789"


def test_h4_last_day_counts_taiwan_working_days():
    # 2023-12-31 is a Sunday; 7 working days back (Dec 29, 28, 27, 26, 25, 22, 21) -> Dec 20.
    assert last_day_registered_in_time(date(2023, 12, 31), 7) == date(2023, 12, 20)
    assert last_day_registered_in_time(date(2023, 12, 31), 0) == date(2023, 12, 31)


def test_h4_make_up_workday_counts():
    # Saturday 2023-01-07 was a make-up workday; Friday 2023-01-20 a bridge holiday.
    assert last_day_registered_in_time(date(2023, 1, 7), 1) == date(2023, 1, 6)
    assert last_day_registered_in_time(date(2023, 1, 21), 1) == date(2023, 1, 18)


def test_rule9_current_stage_is_smallest_offset_at_or_above_days_left():
    deadline = date(2023, 12, 20)
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 10, 1)) is None  # 80 days left
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 10, 21)) == 60
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 11, 20)) == 30
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 12, 13)) == 7
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 12, 20)) == 7
    assert current_stage([60, 30, 14, 7], deadline, date(2023, 12, 21)) is None
