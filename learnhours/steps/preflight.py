"""What is checked once for all the plans of a night, after its inbox is read (the roster is the
night's own) and before any plan is judged, so that a refused night sends nothing at all: no
person bound by two open plans (steps.coverage), no real mail to a placeholder
(steps.placeholders). `learnhours run` asks the same before it starts the flow."""

from __future__ import annotations

from sqlalchemy import Engine

from learnhours.steps.coverage import refuse_overlaps
from learnhours.steps.mail import Mail
from learnhours.steps.night import Night


def refuse_unsafe_night(engine: Engine, night: Night, mail: Mail) -> None:
    """PlansOverlap or PlaceholderAddress (a PlanError, a SettingsError) when the night must
    not send: it names the plans, the plan field, setting or roster column to fix."""
    refuse_overlaps(engine, night.judged)
    if mail.real:
        mail.refuse_placeholders(engine, [*night.judged, *night.closing])
