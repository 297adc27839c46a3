"""What is checked once for all the plans of a night, after its inbox is read (the roster is the
night's own) and before any plan is judged, so that a refused night sends nothing at all: every
staff category its plans name is one the office's rosters use, no person is bound by two open
plans (steps.coverage), no real mail goes to a placeholder (steps.placeholders). `learnhours
run` asks the same before it starts the flow."""

from __future__ import annotations

from sqlalchemy import Engine

from learnhours.plans import Catalog
from learnhours.steps.coverage import known_categories, refuse_overlaps, refuse_unknown_categories
from learnhours.steps.mail import Mail
from learnhours.steps.night import Night
from learnhours.transforms.roster_codes import CodeTables


def refuse_unsafe_night(
    engine: Engine, night: Night, mail: Mail, catalog: Catalog, codes: CodeTables
) -> None:
    """PlanError (an unknown staff category, two plans binding one person) or PlaceholderAddress
    (a SettingsError) when the night must not send: it names the plans, the plan file's line,
    the setting or roster column to fix."""
    known = known_categories(engine, codes)
    refuse_unknown_categories(catalog, [*night.judged, *night.closing], known)
    refuse_overlaps(engine, night.judged)
    if mail.real:
        mail.refuse_placeholders(engine, [*night.judged, *night.closing])
