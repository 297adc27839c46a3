"""`main`: the boundary where a command's errors become one Chinese sentence and an exit code
(never a traceback; the details, IDs masked, in var/log/errors.log)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from learnhours.cli.output import _lines, printable
from learnhours.cli.parser import parse
from learnhours.notifiers.backends import MailConfigError
from learnhours.plans import PlanError
from learnhours.private import owner_only
from learnhours.settings import Settings, SettingsError
from learnhours.warehouse.lock import RunLocked


def main(argv: list[str] | None = None) -> int:
    """The `learnhours` command: what it writes is its owner's alone (learnhours.private)."""
    with owner_only():
        return _command(argv)


def _command(argv: list[str] | None) -> int:
    args = parse(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    root = logging.getLogger()
    if not root.handlers:
        # The handler's own level: Prefect's loggers and the product's log at INFO for the run's
        # logs in the Prefect UI; on the terminal only warnings, unless -v.
        terminal = logging.StreamHandler()
        terminal.setLevel(level)
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(terminal)
        root.setLevel(level)
    try:
        return args.func(args)
    except (SettingsError, MailConfigError) as exc:  # the mail settings are settings too
        print(f"設定錯誤：{_lines(str(exc))}", file=sys.stderr)
        return 2
    except PlanError as exc:
        print(f"計畫檔錯誤：{_lines(str(exc))}", file=sys.stderr)
        return 2
    except RunLocked as exc:
        print(f"另一個執行正在進行，本次未執行：{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "已中斷：未完成的步驟下次執行時會重做（已匯入的檔案與已寄出的通知不會重複）",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # `learnhours status | head`: the reader left; that is not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the boundary: a person reads this, never a traceback
        return _failed(args, exc)


def _failed(args: argparse.Namespace, exc: Exception) -> int:
    """Any error no command handled, as one plain sentence on stderr (and exit 1 or 2)."""
    from learnhours.extractors.site_profile import ProfileError
    from learnhours.flows.failure import for_people, scrub

    settings: Settings | None = getattr(args, "settings", None)
    if args.verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, ProfileError):
        print(f"站台設定檔錯誤：{printable(str(exc))}", file=sys.stderr)
        return 2
    database, wait = "", None
    if settings is not None:
        from sqlalchemy.engine import make_url

        try:
            database = make_url(settings.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unusable URL is named by the message itself
            database = ""
        wait = settings.database_lock_wait_seconds
    words = for_people(exc, printable(database), wait)
    if words is not None:
        print(words, file=sys.stderr)
        return 1
    first = (scrub(str(exc)).strip().splitlines() or [""])[0]
    details = _write_details(exc, settings)
    print(
        f"未預期的錯誤（{type(exc).__name__}）：{printable(first)}；"
        + (
            f"詳細內容已記錄在 {printable(str(details))}，回報問題時請附上"
            if details
            else "加上 -v 重新執行可看詳細內容"
        ),
        file=sys.stderr,
    )
    return 1


# errors.log is rotated past this size: it and errors.log.1 hold the latest tracebacks.
ERRORS_LOG_BYTES = 1_000_000


def _write_details(exc: Exception, settings: Settings | None) -> Path | None:
    """The traceback, IDs masked, appended to var/log/errors.log: for whoever fixes it."""
    import traceback
    from datetime import UTC, datetime

    from learnhours.flows.failure import scrub

    path = settings.errors_log if settings is not None else Path.cwd() / "var/log/errors.log"
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size >= ERRORS_LOG_BYTES:
            # Rotated: the last file's worth stays as errors.log.1, older ones go (the purge
            # trims errors.log by age; this bounds it when errors come thick and fast).
            path.replace(path.with_name(path.name + ".1"))
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {' '.join(sys.argv[1:2])}\n")
            log.write(scrub("".join(traceback.format_exception(exc))))
    except OSError:
        return None
    return path
