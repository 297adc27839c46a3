"""The installation a command works on, from its command line: settings, warehouse, plans, mail, today."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from learnhours.cli.output import printable
from learnhours.plans import Catalog, Plan
from learnhours.settings import Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    """The installation's settings, read once per command (learnhours.settings)."""
    if getattr(args, "settings", None) is None:
        args.settings = load_settings(config=args.config, database_url=args.database_url)
    return args.settings


def _engine(args: argparse.Namespace):  # noqa: ANN202
    """The warehouse engine, made once per command."""
    if getattr(args, "engine", None) is None:
        args.engine = _new_engine(args)
    return args.engine


def _new_engine(args: argparse.Namespace):  # noqa: ANN202
    from sqlalchemy.engine import make_url

    from learnhours.warehouse.db import connect

    settings = _settings(args)
    url = settings.database_url
    parsed = make_url(url)
    file = (parsed.database or "").removeprefix("file:").partition("?")[0]  # a URI-form name too
    new = (
        parsed.get_backend_name() == "sqlite"
        and file not in ("", ":memory:")
        and parsed.query.get("mode") != "ro"  # read-only: never created
        and not Path(file).exists()
    )
    engine = connect(url, settings.database_lock_wait_seconds)
    if new:
        # A command typed outside the project folder must not pass off a new file as the data.
        print(
            f"注意：資料庫 {printable(file)} 不存在，已建立新的空資料庫（{_found(args)}）",
            file=sys.stderr,
        )
    return engine


def _found(args: argparse.Namespace) -> str:
    """Where the settings came from, for a message about which warehouse was opened."""
    settings = _settings(args)
    if settings.config_file:
        return f"設定檔 {settings.config_file}"
    return (
        f"自 {Path.cwd()} 往上找不到 learnhours.toml，使用預設值；"
        "請在專案資料夾中執行，或以 --config、LEARNHOURS_CONFIG 或 --database-url 指定"
    )


def _as_of(args: argparse.Namespace) -> date:
    from learnhours.taipei import taipei_today

    return args.as_of or taipei_today()


def _today() -> date:
    from learnhours.taipei import taipei_today

    return taipei_today()


def _catalog(args: argparse.Namespace) -> Catalog:
    folder = _settings(args).plans_dir
    if not folder.is_dir():
        raise SettingsError(f"計畫資料夾 {folder} 不存在（{_found(args)}）")
    return Catalog.read(folder)


def _plan(args: argparse.Namespace) -> Plan:
    """The plan `--plan` names; PlanError when it names a staff category no roster uses."""
    from learnhours.steps.coverage import refuse_unknown_categories

    catalog = _catalog(args)
    plan = catalog.find(args.plan, _as_of(args))
    refuse_unknown_categories(catalog, [plan], _known_categories(args))
    return plan


def _known_categories(args: argparse.Namespace) -> frozenset[str]:
    """The staff categories the office's code tables and its roster (if there is a warehouse
    yet: none is made for this) use."""
    from learnhours.steps.coverage import known_categories
    from learnhours.steps.inbox import roster_codes

    return known_categories(_warehouse(args), roster_codes(_settings(args)))


def _warehouse(args: argparse.Namespace):  # noqa: ANN202 - an Engine, or None
    """The warehouse if there is one; a SQLite file not there yet is not made for a question."""
    from sqlalchemy.engine import make_url

    url = make_url(_settings(args).database_url)
    file = (url.database or "").removeprefix("file:").partition("?")[0]
    named = url.get_backend_name() == "sqlite" and file not in ("", ":memory:")
    if named and not Path(file).exists():
        return None
    return _engine(args)


def _mail(args: argparse.Namespace):  # noqa: ANN202
    from learnhours.steps import Mail

    settings = _settings(args)
    if getattr(args, "outbox", None):
        settings = settings.model_copy(update={"outbox": args.outbox})
    return Mail.of(settings)
