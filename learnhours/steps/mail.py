"""Who sends to whom, and how: the settings' overrides of each plan's own addresses, and the
context every notice of a plan's night shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from learnhours.notifiers import backends, render, template_check
from learnhours.notifiers.backends import MailBackend, MailSettings
from learnhours.notifiers.backends.config import secret
from learnhours.notifiers.drafts import Context
from learnhours.notifiers.summary_facts import stale_reason
from learnhours.plans import Plan, PlanError
from learnhours.settings import Settings, SettingsError, env_name
from learnhours.warehouse import record_queries


class NoSender(PlanError):
    """Mail is due but nobody is configured to send it."""


@dataclass(frozen=True)
class Mail:
    """Who sends to whom, and how: the settings' overrides of each plan's own addresses."""

    delivery: MailSettings
    mail_from: str | None = None
    hr_addresses: tuple[str, ...] = ()
    admin: str | None = None
    templates_dir: Path | None = None  # the agency's own templates (render.Templates)
    # What HR opens the summary's workbook with; None: summaries go without it. Never shown.
    workbook_password: str | None = field(default=None, repr=False)
    # Pilot mode: every mail of the night to this one address instead (steps.outbox).
    pilot_to: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> Mail:
        """The mail settings, checked, and the workbook password read once (from the
        environment, or the Prefect Secret block named): a block that cannot be read stops the
        command or the run where it starts."""
        given = settings.workbook_password
        password = secret(given.get_secret_value() if given else None,
                          settings.workbook_password_block,
                          env_name("workbook_password_block"))  # fmt: skip
        return cls(settings.mail(), settings.mail_from, settings.hr_list, settings.admin_email,
                   settings.templates_dir, password,
                   pilot_to=(settings.pilot_to or "").strip() or None)  # fmt: skip

    def check_templates(self, plans: Iterable[Plan]) -> None:
        """SettingsError naming each file and line of a broken template override. Called once,
        where a command or a run starts: a typo fails the start and not the night's mail."""
        problems = template_check.check_templates(self.templates_dir, plans)
        if problems:
            raise SettingsError("郵件範本有誤：\n" + "\n".join(f"  {p}" for p in problems))

    def backend(self) -> MailBackend:
        return backends.backend_for(self.delivery)

    def sender(self, plan: Plan) -> str:
        """LEARNHOURS_MAIL_FROM for every mail, else the plan's reminders.sender."""
        sender = (self.mail_from or "").strip() or (plan.reminders.sender or "").strip()
        if not sender:
            raise NoSender(
                f"計畫 {plan.id} 沒有 reminders.sender，也沒有設定 LEARNHOURS_MAIL_FROM：無法寄信"
            )
        return sender

    def hr(self, plan: Plan) -> tuple[str, ...]:
        return self.hr_addresses or tuple(a for a in plan.reminders.hr_addresses if a)

    def refuse_placeholders(self, engine: Engine, plans: Iterable[Plan]) -> None:
        """Before a real send (SMTP): PlaceholderAddress when a sender or recipient of these
        plans is a reserved or demo address, naming the plan field, setting or roster column."""
        from learnhours.steps.placeholders import refuse_placeholders

        plans = list(plans)
        setting = "設定 mail_from（LEARNHOURS_MAIL_FROM）"
        senders = {p.id: (self.sender(p), setting if (self.mail_from or "").strip() else
                          f"計畫 {p.id} 的 reminders.sender") for p in plans}  # fmt: skip
        setting = "設定 hr_addresses（LEARNHOURS_HR_ADDRESSES）"
        hr = {p.id: (self.hr(p), setting if self.hr_addresses else
                     f"計畫 {p.id} 的 reminders.hr_addresses") for p in plans}  # fmt: skip
        refuse_placeholders(engine, plans, sender_of=senders, hr_of=hr, pilot_to=self.pilot_to)

    @property
    def real(self) -> bool:
        """Whether the settings send mail to a real mail server (SMTP), not to files."""
        from learnhours.notifiers.backends.config import checked

        return checked(self.delivery) is not None

    def context(
        self,
        plan: Plan,
        today: date,
        data_through: date | None,
        stale: str,
        several_agencies: bool = False,
        night_note: str = "",
    ) -> Context:
        """What every notice of the plan's night needs: plan, dates, staleness, who sends to whom;
        `night_note`: the nights before this one that did not complete, for the summaries."""
        return Context(plan, today, data_through, stale, self.sender(plan), self.hr(plan),
                       several_agencies, render.templates(self.templates_dir),
                       self.workbook_password, night_note)  # fmt: skip


@dataclass(frozen=True)
class Freshness:
    """How current the warehouse's records are, read once for a plan's night."""

    data_through: date | None  # the newest record's course date
    stale: str  # non-empty: why the data is too old to remind people on


def freshness(engine: Engine, plan: Plan, today: date) -> Freshness:
    with engine.connect() as connection:
        fresh = record_queries.freshness(connection, today)
    stale = stale_reason(fresh.newest_batch, plan.reminders.freshness_days, datetime.now(UTC))
    return Freshness(fresh.newest_record, stale)
