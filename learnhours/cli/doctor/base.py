"""What a check of `learnhours doctor` is: a name, a function of the office that says ✓ or ✗ in
one Chinese sentence with what to do, and whether the first night needs it. The office's
settings, warehouse, plans and roster are read once, when a check first needs them; what cannot
be read makes the checks that need it fail, saying which earlier line to fix first."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from learnhours.plans import Catalog, Plan
    from learnhours.settings import Settings
    from learnhours.steps import Mail
    from learnhours.transforms.compliance import Member


@dataclass(frozen=True)
class Verdict:
    """What a check found: passed or not, in one sentence (with what to do when not)."""

    ok: bool
    words: str


def passed(words: str) -> Verdict:
    return Verdict(True, words)


def failed(words: str) -> Verdict:
    return Verdict(False, words)


@dataclass(frozen=True)
class Check:
    """One point of readiness. `required`: the office is not ready without it (exit 1); else
    it is said (⚠) and the office may start."""

    name: str
    run: Callable[[Office], Verdict]
    required: bool = True


class Unchecked(Exception):
    """A check cannot be made: something it needs (the settings, the warehouse) is missing;
    `first` names the check whose line says what to fix."""

    def __init__(self, words: str, first: str) -> None:
        super().__init__(words)
        self.first = first


class Office:
    """The installation a doctor looks at, each part read once, when first needed. A part that
    cannot be read raises Unchecked every time it is asked for."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._failed: dict[str, Unchecked] = {}

    def _once(self, part: str, make: Callable[[], Any]) -> Any:
        if part in self._failed:
            raise self._failed[part]
        try:
            return make()
        except Unchecked as exc:
            self._failed[part] = exc
            raise

    @cached_property
    def today(self) -> date:
        from learnhours.taipei import taipei_today

        return self.args.as_of or taipei_today()

    @cached_property
    def settings(self) -> Settings:
        return self._once("settings", self._settings)

    def _settings(self) -> Settings:
        from learnhours.settings import SettingsError, load_settings

        try:
            settings = load_settings(config=self.args.config, database_url=self.args.database_url)
        except SettingsError as exc:
            raise Unchecked(str(exc), "設定檔") from None
        self.args.settings = settings
        return settings

    @cached_property
    def engine(self) -> Engine:
        return self._once("engine", self._engine)

    def _engine(self) -> Engine:
        """The warehouse, reachable and at the newest schema; never created nor migrated here."""
        from sqlalchemy import make_url

        from learnhours.flows.failure import for_people
        from learnhours.warehouse import db

        settings = self.settings
        url = make_url(settings.database_url)
        shown = url.render_as_string(hide_password=True)
        file = (url.database or "").removeprefix("file:").partition("?")[0]
        new = url.get_backend_name() == "sqlite" and file not in ("", ":memory:")
        if new and not Path(file).is_file():  # a doctor never creates a warehouse
            raise Unchecked(
                f"資料庫 {file} 還不存在：第一次匯入（learnhours ingest inbox）時會建立", "資料庫"
            )
        try:
            engine = db.create_engine_for(settings.database_url, settings.database_lock_wait_seconds)
            current, head = db.revisions(engine)
        except Exception as exc:  # noqa: BLE001 - said in words, whatever the driver raised
            words = for_people(exc, shown) or f"無法讀取資料庫 {shown}（{type(exc).__name__}）"
            raise Unchecked(words, "資料庫") from None
        if current != head:
            raise Unchecked(
                f"資料庫 {shown} 的結構是版本 {current or '（空的）'}，最新為 {head}："
                "請執行 learnhours db upgrade",
                "資料庫",
            )
        return engine

    @cached_property
    def catalog(self) -> Catalog:
        return self._once("catalog", self._catalog)

    def _catalog(self) -> Catalog:
        from learnhours.plans import Catalog

        folder = self.settings.plans_dir
        if not folder.is_dir():
            raise Unchecked(f"計畫資料夾 {folder} 不存在：請建立它並放入計畫檔", "計畫檔")
        return Catalog.read(folder)

    @cached_property
    def open_plans(self) -> list[Plan]:
        return self._once("open_plans", self._open_plans)

    def _open_plans(self) -> list[Plan]:
        from learnhours.plans import PlanError

        try:
            return self.catalog.current(self.today)
        except PlanError:
            raise Unchecked("計畫檔有錯誤", "計畫檔") from None

    @cached_property
    def members(self) -> list[Member]:
        return self._once("members", self._members)

    def _members(self) -> list[Member]:
        from learnhours.warehouse import roster_queries

        with self.engine.connect() as connection:
            people = roster_queries.members(connection)
        if not people:
            raise Unchecked(
                "名冊還沒有匯入：請把人員名冊放進收件資料夾，執行 learnhours ingest", "名冊"
            )
        return people

    def plan_file(self, plan: Plan) -> str:
        """Where a plan is written, for a sentence saying what to edit: `plans/national.yaml`."""
        found = self.catalog.file_of(plan)
        if found is None:
            return f"計畫 {plan.id}"
        root = self.settings.root
        path = found.path
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    @cached_property
    def mail(self) -> Mail:
        return self._once("mail", self._mail)

    def _mail(self) -> Mail:
        from learnhours.notifiers.backends import MailConfigError
        from learnhours.steps import Mail

        try:
            return Mail.of(self.settings)
        except MailConfigError as exc:
            raise Unchecked(str(exc), "郵件伺服器") from None


def run_check(check: Check, office: Office) -> Verdict:
    """The check's verdict, never an exception: a check that cannot be made, or that raises,
    fails, saying so in words."""
    try:
        return check.run(office)
    except Unchecked as exc:
        if exc.first == check.name:
            return failed(str(exc))
        return failed(f"無法檢查：請先處理上面的「{exc.first}」")
    except Exception as exc:  # noqa: BLE001 - a doctor never shows a traceback
        from learnhours.flows.failure import scrub

        return failed(f"檢查時發生錯誤（{type(exc).__name__}：{scrub(str(exc))[:200]}）")
