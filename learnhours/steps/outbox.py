"""Where a plan's night writes: the notice ledger and the mail server; or, for a dry run, nowhere
— the same calls, answered by saying what would have been written and sent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from learnhours.notifiers import delivery, digest_history, ledger, superseding
from learnhours.notifiers.backends import MailBackend
from learnhours.notifiers.drafts import Draft, piloted
from learnhours.transforms.compliance import UnitResult


@dataclass(frozen=True)
class Planned:
    """A notice a dry run would queue, as `notify --dry-run` prints it (never the message)."""

    kind: str
    label: str
    unit: str
    masked_id: str
    to_address: str
    subject: str


class Outbox:
    """The ledger and the mail server of one plan's night."""

    dry_run = False

    def __init__(
        self, engine: Engine, plan_id: str, today: date, backend: MailBackend | None, sender: str
    ) -> None:
        self.engine, self.plan_id, self.today = engine, plan_id, today
        self.backend, self.sender = backend, sender

    def set_aside_plan_wide(self, stage: int | None) -> int:
        """Pending digests of an earlier stage and summaries of an earlier day (rule 9)."""
        with self.engine.begin() as connection:
            return superseding.supersede_plan_wide(connection, self.plan_id, stage, self.today)

    def set_aside_reminders(
        self, short_by_stage: Mapping[int | None, set[str]], within: ledger.Scope
    ) -> int:
        """Pending reminders of an earlier stage, or to someone no longer short."""
        with self.engine.begin() as connection:
            return superseding.supersede_reminders(connection, self.plan_id, short_by_stage, within)

    def enqueue(self, drafts: Iterable[Draft]) -> int:
        """The drafts not yet in the ledger, written; how many are new."""
        with self.engine.begin() as connection:
            return ledger.enqueue(connection, self.plan_id, drafts, self.today)

    def remember_digests(self, drafts: Sequence[Draft], units: Sequence[UnitResult]) -> None:
        """The units of the digests just written, as they stand tonight: what each one's next
        digest compares with (notifiers.digest_history)."""
        stages = {d.recipient_key: d.stage for d in drafts if d.kind == "digest"}
        digested = [u for u in units if u.key in stages]
        if not digested:
            return
        with self.engine.begin() as connection:
            for stage in sorted(set(stages.values())):
                ours = [u for u in digested if stages[u.key] == stage]
                digest_history.remember(connection, self.plan_id, self.today, stage, ours)

    def deliver(self, kinds: tuple[str, ...], keys: ledger.Scope = None) -> delivery.Delivered:
        """What is pending of these kinds (to these recipient keys), sent."""
        assert self.backend is not None
        return delivery.deliver(self.engine, self.backend, self.plan_id, kinds=kinds,
                              sender=self.sender, keys=keys)  # fmt: skip

    def send(
        self, drafts: Iterable[Draft], kinds: tuple[str, ...], keys: ledger.Scope = None
    ) -> tuple[int, delivery.Delivered]:
        """`enqueue` then `deliver`, side by side: the drafts are written a batch at a time and
        each batch goes out while the next is rendered. How many were new, and what was sent."""
        assert self.backend is not None
        new = 0

        def written() -> Iterator[Sequence[ledger.Waiting]]:
            nonlocal new
            for rows in ledger.write(self.engine, self.plan_id, drafts, self.today):
                new += len(rows)
                yield rows

        delivered = delivery.deliver(self.engine, self.backend, self.plan_id, kinds=kinds,
                                   sender=self.sender, keys=keys, arriving=written())  # fmt: skip
        return new, delivered


class DryOutbox(Outbox):
    """A dry run's outbox: each draft is rendered (what cannot be sent is found as in a real
    run) and said, never written; what is pending in the ledger is listed as what the real run
    would send again. Nothing is set aside, written or sent."""

    dry_run = True

    def __init__(self, engine: Engine, plan_id: str, today: date, sender: str) -> None:
        super().__init__(engine, plan_id, today, None, sender)
        self.planned: list[Planned] = []
        self.retries: dict[int, Any] = {}  # ledger row id -> the pending notice

    def set_aside_plan_wide(self, stage: int | None) -> int:
        return 0

    def set_aside_reminders(
        self, short_by_stage: Mapping[int | None, set[str]], within: ledger.Scope
    ) -> int:
        return 0

    def remember_digests(self, drafts: Sequence[Draft], units: Sequence[UnitResult]) -> None:
        return None

    def enqueue(self, drafts: Iterable[Draft]) -> int:
        count = 0
        for d in drafts:
            count += 1
            if d.kind in ("reminder", "digest"):  # a summary's readers are said as a status
                self.planned.append(
                    Planned(d.kind, d.label, d.unit, d.masked_id, d.to_address, d.subject)
                )
        return count

    def send(
        self, drafts: Iterable[Draft], kinds: tuple[str, ...], keys: ledger.Scope = None
    ) -> tuple[int, delivery.Delivered]:
        return self.enqueue(drafts), self.deliver(kinds, keys)

    def deliver(self, kinds: tuple[str, ...], keys: ledger.Scope = None) -> delivery.Delivered:
        with self.engine.connect() as connection:
            pending = ledger.listing(connection, "pending", self.plan_id)
        for row in pending:
            if row.kind in kinds:
                self.retries.setdefault(row.id, row)
        return delivery.Delivered()


class PilotOutbox(Outbox):
    """Pilot mode's outbox (setting pilot_to): every notice goes to the pilot address instead,
    its subject naming the real recipient, through the same route and the same ledger, under
    the plan's pilot key (ledger.pilot_key). Pilot notices are sent once a stage, like real
    ones, yet never count as sent to anyone: their keys are not the plan's, so the first real
    night finds nothing sent and sends everything."""

    def __init__(
        self,
        engine: Engine,
        plan_id: str,
        today: date,
        backend: MailBackend | None,
        sender: str,
        pilot_to: str,
    ) -> None:
        super().__init__(engine, ledger.pilot_key(plan_id), today, backend, sender)
        self.pilot_to = pilot_to

    def enqueue(self, drafts: Iterable[Draft]) -> int:
        return super().enqueue(piloted(d, self.pilot_to) for d in drafts)

    def send(
        self, drafts: Iterable[Draft], kinds: tuple[str, ...], keys: ledger.Scope = None
    ) -> tuple[int, delivery.Delivered]:
        return super().send((piloted(d, self.pilot_to) for d in drafts), kinds, keys)


def outbox_for(
    engine: Engine,
    plan_id: str,
    today: date,
    backend: MailBackend | None,
    sender: str,
    dry_run: bool,
    pilot_to: str | None = None,
) -> Outbox:
    """The night's outbox: a dry run's (nothing written), the pilot's (every mail to
    `pilot_to`, under the plan's pilot key in the ledger) or the real one. `plan_id` of the
    outbox is the ledger's key for the plan: what every ledger read of the night uses."""
    if dry_run:
        return DryOutbox(engine, plan_id, today, sender)
    if pilot_to:
        return PilotOutbox(engine, plan_id, today, backend, sender, pilot_to)
    return Outbox(engine, plan_id, today, backend, sender)
