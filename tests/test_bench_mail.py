"""bench/mail_delivery.py measures what it says: its reminders are due tonight and all of them
reach the loopback sink (its people once carried no track, so no reminder was due and the bench
stopped at 'queued 0 of 200')."""

from __future__ import annotations

import runpy

from tests.conftest import ROOT


def test_the_mail_bench_renders_ledgers_and_delivers_every_reminder(capsys):
    bench = runpy.run_path(str(ROOT / "bench" / "mail_delivery.py"), run_name="bench")
    assert bench["main"](["--n", "30"]) == 0
    said = capsys.readouterr().out
    assert "(30 received, {'sent': 30})" in said and "60 received" in said
