"""Agency plans: the rules as data. One YAML file per agency plan in plans/, validated on load.

schema (what a plan file says, validated; its parts: requirements, and values such as codes and
hours), checks (the plan compiled into the Checks and tracks compliance works with), conditions
(who a rule is for), consistency (checks across fields), messages (every problem at its line, in
Chinese), files (reading a file, plans that recur), catalog (which plan applies when: `current`),
describe (a plan in words).
"""

from learnhours.plans.catalog import CURRENT, Catalog, find_plan
from learnhours.plans.checks import CHANNEL_NAMES, Check, TrackView, window_start
from learnhours.plans.conditions import Condition, all_hold
from learnhours.plans.files import (
    SHIPPED_PLANS,
    PlanFile,
    load_plan,
    plan_files,
    read_plan_file,
)
from learnhours.plans.requirements import Requirement
from learnhours.plans.schema import CHANNEL_OF_KIND, Bundle, Plan, Track, UnitTier
from learnhours.plans.values import REQUIREMENT_ALL, ByRole, PlanError

__all__ = [
    "CHANNEL_NAMES",
    "CHANNEL_OF_KIND",
    "CURRENT",
    "REQUIREMENT_ALL",
    "SHIPPED_PLANS",
    "Bundle",
    "ByRole",
    "Catalog",
    "Check",
    "Condition",
    "all_hold",
    "Plan",
    "PlanError",
    "PlanFile",
    "Requirement",
    "Track",
    "TrackView",
    "UnitTier",
    "find_plan",
    "load_plan",
    "plan_files",
    "read_plan_file",
    "window_start",
]
