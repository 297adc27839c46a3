"""The CLI's CSV contracts that other tools read."""

import csv
import io
from datetime import date

from learnhours.cli import main
from learnhours.ingest import ingest_file
from tests.factories import export_file, new_id, person, record, roster_file


def test_status_and_units_csv_contract(engine, tmp_path, capsys):
    a = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(a), person(category="臨時")]))
    ingest_file(engine, export_file(tmp_path, [record(a, hours=1.5, day=date(2026, 3, 3))]))
    url = str(engine.url)
    assert (
        main(
            [
                "--database-url",
                url,
                "status",
                "--plan",
                "national-2026",
                "--as-of",
                "2026-11-23",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == [
        "person_id",
        "name",
        "unit",
        "status",
        "needed_hours",
        "total_hours",
        "policy_hours",
        "environment_hours",
        "democracy_hours",
        "gender_hours",
        "outcome",
    ]
    mine = next(r for r in rows if r[0] == a)
    assert mine[3:6] == ["short", "18.5", "1.5"] and mine[6] == "1.5"
    assert (
        main(
            [
                "--database-url",
                url,
                "units",
                "--plan",
                "national-2026",
                "--as-of",
                "2026-11-23",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    units = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert units == [["unit", "headcount", "met", "rate", "outcome"], ["民政課", "1", "0", "0", ""]]
