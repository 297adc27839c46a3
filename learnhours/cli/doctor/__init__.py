"""`learnhours doctor`: whether this office is ready for its first night, point by point, in
Chinese: each check one line, ✓ or ✗ and what to do (⚠ for what the night can do without). Exit
0 only when every required check passes; never a traceback, whatever is missing.

A check is a `Check(name, function, required)` in one of these modules' CHECKS: to add one,
write a function of the `Office` (base.py) that returns `passed(...)` or `failed(...)`, and list
it where it belongs below (or in a module of its own, added to CHECKS here).
"""

from __future__ import annotations

import argparse

from learnhours.cli.doctor import files, mail, nights, people, privacy, schedule
from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed, run_check

CHECKS: list[Check] = [
    *files.CHECKS, *people.CHECKS, *mail.CHECKS, *privacy.CHECKS, *schedule.CHECKS, *nights.CHECKS
]


def cmd_doctor(args: argparse.Namespace) -> int:
    office = Office(args)
    missing = 0
    for check in CHECKS:
        verdict = run_check(check, office)
        mark = "✓" if verdict.ok else ("✗" if check.required else "⚠")
        missing += check.required and not verdict.ok
        print(f"{mark} {check.name}：{verdict.words}")
    if missing:
        print(f"尚有 {missing} 項未通過：依上面 ✗ 的說明修正後，再執行 learnhours doctor")
        return 1
    print("全部通過：可以開始第一晚（建議先試寄一週：設定 pilot_to，見 docs/operations.md）")
    return 0


__all__ = ["CHECKS", "Check", "Office", "Verdict", "cmd_doctor", "failed", "passed"]
