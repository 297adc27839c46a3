"""`learnhours run`, `runs` and `unlock`: the nightly flow in this process, its log and its locks."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnhours.cli.installation import _engine
from learnhours.cli.output import _emit, _local, printable
from learnhours.settings import Settings, SettingsError, load_settings, parameter_overrides

if TYPE_CHECKING:
    from learnhours.steps import Night


def _prefect_home(path: Path, *, local_only: bool = False) -> None:
    """Prefect reads its settings when imported: point it at this installation's home first.

    `local_only` (the demo): its own home and no API URL, so its runs never reach a server an
    operator configured for production.
    """
    if local_only:
        os.environ["PREFECT_HOME"] = str(path)
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ.setdefault("PREFECT_HOME", str(path))
    # The home in force (the environment's, when it names one) exists before Prefect is imported,
    # which would otherwise warn on the terminal that it could not make it.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _for_the_run(args: argparse.Namespace, **choices: Any) -> tuple[dict[str, Any], Settings]:
    """What the nightly run is given, and the settings it runs on.

    Given: --config, --database-url and the command's own choices (its inbox, its outbox …), as
    the flow's parameter `settings`. Prefect keeps a run's parameters, so a password there is
    refused (SettingsError: a URL's password belongs in ~/.pgpass or PGPASSWORD). The settings
    are loaded from the same, once, and handed to the flow in this process.
    """
    given = {"config": args.config, "database_url": args.database_url, **choices}
    given = {k: str(v) if isinstance(v, Path) else v for k, v in given.items() if v is not None}
    settings = load_settings(**parameter_overrides(given))
    args.settings = settings  # an error names the run's warehouse
    return given, settings


def _run_flow(
    args: argparse.Namespace,
    given: dict[str, Any],
    settings: Settings,
    *,
    prefect_home: Path | None = None,
    local_only: bool = False,
    locks: frozenset[str] = frozenset(),
    **parameters: Any,
) -> tuple[int, dict | None]:
    """The nightly flow in this process (Prefect starts a temporary local server for it), on
    `settings`, handed down here rather than through the environment; `given` (_for_the_run) is
    its parameter, from which a worker of its shares, another process, loads its own. `locks`:
    the plan locks this command took for the run (steps.night_taken)."""
    _prefect_home(prefect_home or settings.prefect_home, local_only=local_only)
    from learnhours.flows.nightly import nightly, settings_in_this_process

    with _run_errors_said_once(args.verbose), settings_in_this_process(settings, locks):
        state = nightly(**parameters, settings=given, return_state=True)
    if state.is_failed():
        print(
            f"夜間作業失敗：{printable(state.message or '')}"
            "（詳情：`learnhours runs`，或 Prefect UI 中這次執行的紀錄）",
            file=sys.stderr,
        )
        return 1, None
    summary: dict = state.result()  # type: ignore[assignment]  # the flow's data: a dict
    if state.name == "Warning":
        print(f"注意：{state.message}", file=sys.stderr)
        return 3, summary
    return 0, summary


class _RunErrorsInTheLog(logging.Filter):
    """Drops the run's own warning and error lines (the engines' tracebacks, "Finished in state
    Failed", the flow's "夜間作業失敗") from the terminal: the command prints the run's
    state message, which holds the cause or the warnings, once. The records still reach the
    run's logs in Prefect (their API handler is on Prefect's own loggers, not here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        engine = record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        return not (engine and record.levelno >= logging.WARNING)


@contextlib.contextmanager
def _run_errors_said_once(verbose: bool) -> Iterator[None]:
    """While the CLI runs the flow in this process: the terminal shows the product's own
    warnings but not the run's (said once by the command) nor the engines' error reports
    (with -v, everything)."""
    if verbose:
        yield
        return
    quiet = _RunErrorsInTheLog()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def cmd_run(args: argparse.Namespace) -> int:
    with _told_when_refused(args):
        given, settings = _for_the_run(args, inbox=args.inbox, outbox=args.outbox)
        _prefect_home(settings.prefect_home)  # before anything below imports Prefect
        settings.mail()  # checked before the flow starts: a mistake is exit 2, not a failed run
        from learnhours.flows.workers import cluster_security

        cluster_security(settings)  # likewise: a scheduler open to anyone is refused here
        night = _refused_before_the_run(args, settings)
    # Tonight's plans are claimed before the temporary Prefect server starts: a run that finds
    # them all taken (RunLocked) says so in one sentence, exit 1, having started nothing.
    from learnhours.steps import night_taken
    from learnhours.warehouse.lock import RunLocked

    with contextlib.ExitStack() as claimed:
        locks: frozenset[str] = frozenset()
        if night is not None:
            try:
                locks = claimed.enter_context(night_taken(_engine(args), night))
            except RunLocked as exc:  # a night not done is told, as the run tells it
                taken = ",".join(p.id for p in [*night.judged, *night.closing]) or args.plan
                _tell_a_person(args, exc, taken, night)
                raise
            except Exception:  # noqa: BLE001, S110 - the run meets it too, and tells a person
                pass  # (a warehouse it cannot reach: its failure notice and syslog line)
        code, summary = _run_flow(
            args,
            given,
            settings,
            locks=locks,
            plan_id=args.plan,
            fetch=args.fetch,
            profile=args.profile,
            as_of=args.as_of,
        )
    if code == 1 and _refused_now(args, settings):
        code = 2  # refused on the roster it had just read: a plan or settings file to fix
    if summary is not None:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    return code


def _refused_now(args: argparse.Namespace, settings: Settings) -> bool:
    """After a failed night: is it refused now, on what its ingest has just read (a roster that
    two open plans both bind, a category no roster uses, a placeholder address)? Then it failed
    on a file to fix, exit 2, as when the roster was in before the run; else it broke, exit 1."""
    from learnhours.notifiers.backends import MailConfigError
    from learnhours.plans import PlanError

    try:
        _refused_before_the_run(args, settings)
    except (SettingsError, MailConfigError, PlanError):
        return True
    except Exception:  # noqa: BLE001 - what cannot say so leaves the failure as it was
        return False
    return False


@contextlib.contextmanager
def _told_when_refused(args: argparse.Namespace) -> Iterator[None]:
    """A night refused before its flow starts (a settings mistake, a plan that cannot be used)
    is a failed night like any other: the administrator's notice and the syslog line, as the
    run would send them, before the command says it (exit 2)."""
    from learnhours.notifiers.backends import MailConfigError
    from learnhours.plans import PlanError

    try:
        yield
    except (SettingsError, MailConfigError, PlanError) as exc:
        from learnhours.flows.failure import plans_of_the_night
        from learnhours.taipei import taipei_today

        settings = getattr(args, "settings", None)
        _tell_a_person(args, exc, plans_of_the_night(settings, args.plan,
                                                     args.as_of or taipei_today()))  # fmt: skip
        raise


def _tell_a_person(
    args: argparse.Namespace, exc: Exception, plans: str, night: Night | None = None
) -> None:
    """A night the command refused, told to the administrator and syslog (flows.failure)."""
    from learnhours.flows.failure import notice_settings, plain_cause, tell_a_person
    from learnhours.taipei import taipei_today

    settings = getattr(args, "settings", None) or notice_settings(
        {"config": args.config, "database_url": args.database_url}
    )
    tell_a_person(settings, plans, args.as_of or taipei_today(), plain_cause(exc), night)


def _refused_before_the_run(args: argparse.Namespace, settings: Settings) -> Night | None:
    """What the flow refuses before judging any plan, asked first on the warehouse as it is, so
    that it is exit 2 and a sentence rather than a failed run: a missing inbox, two open plans
    binding one person, a staff category no roster uses, real mail to a placeholder. (The flow
    asks again after its ingest: its roster may be new.) Tonight's plans, None when the plans
    cannot say (the run says why, failing)."""
    from learnhours import steps
    from learnhours.plans import Catalog, PlanError
    from learnhours.taipei import taipei_today
    from learnhours.warehouse.faults import database_cause

    steps.inbox_folder(settings)
    catalog = Catalog.read(settings.plans_dir)
    try:
        night = steps.tonight(catalog, args.plan, args.as_of or taipei_today())
    except PlanError:
        return None  # the run says it, failing, as it always has
    try:
        engine = _engine(args)
        steps.refuse_unsafe_night(engine, night, steps.Mail.of(settings), catalog,
                                  steps.roster_codes(settings))  # fmt: skip
    except Exception as exc:
        if database_cause(exc) is None:
            raise
        # A warehouse that cannot be opened or read is the night's own failure: the run records
        # it and tells the administrator, which a refusal here would not.
        return None
    return night


def cmd_runs(args: argparse.Namespace) -> int:
    from learnhours.warehouse import run_log
    from learnhours.warehouse.faults import database_cause

    engine = _engine(args)
    try:
        run_log.close_abandoned(engine)
    except Exception as exc:
        if database_cause(exc) != "read_only":
            raise
        # A read-only warehouse is listed as it is: killed runs are closed by the next writer.
    with engine.connect() as connection:
        rows = run_log.recent(connection, args.last)
    _emit(
        [
            {
                "id": r.id,
                "started": _local(r.started_at),
                "finished": _local(r.finished_at),
                "state": r.status,
                "plans": r.plans or r.plan_id,
                "files": r.files,
                "rows_loaded": r.rows_loaded,
                "people": r.people,
                "short": r.short,
                "mails_sent": r.mails_sent,
                "cause": r.detail,
            }
            for r in rows
        ],
        args.format,
    )
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from learnhours.warehouse.lock import holders, unlock

    engine = _engine(args)
    if args.name is None:
        held = holders(engine)
        if not held:
            print("沒有任何鎖被持有")
            return 0
        for lock_name, held_by, since in held:
            print(f"{lock_name}：{held_by}（{_local(since):%Y-%m-%d %H:%M:%S} 起）")
        print("請指定要釋放的鎖：learnhours unlock <名稱>（確認該執行已不在進行）")
        return 2
    holder = unlock(engine, args.name)
    if holder is None:
        print(f"沒有人持有 {args.name} 鎖")
        return 0
    print(f"已釋放 {args.name} 鎖（原持有者 {holder}）；請確認該執行已不在進行")
    return 0
