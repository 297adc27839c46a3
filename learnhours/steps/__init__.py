"""The service layer: the nightly job's steps as plain functions, which the command line and the
Prefect flow both call (neither holds business logic).

night (which plans tonight), inbox (fetch and ingest), sources (files' rows as given, for
`explain`), judging (a plan's people judged, whole or a part of its agencies at a time), mail
(who sends to whom), audiences (who reads which summary), sending (the one route that judges a
plan and sends its mail, or says what it would send), closing (a closed year's final summary),
purge (what is kept no longer than the retention settings say).
"""

from learnhours.steps.inbox import (
    Found,
    fetch_to_inbox,
    files_under,
    inbox_folder,
    ingest_paths,
    look_in,
    portal_profile,
    roster_codes,
)
from learnhours.steps.judging import (
    Compliance,
    DataNote,
    Part,
    agency_parts,
    compute,
    data_note,
    judged_people,
)
from learnhours.steps.mail import Mail, NoSender
from learnhours.steps.night import Night, fetch_range, final_due_on, tonight
from learnhours.steps.night_locks import night_taken
from learnhours.steps.preflight import refuse_unsafe_night
from learnhours.steps.purge import Purged, Retention, purge
from learnhours.steps.sending import (
    Job,
    PartReport,
    PartRunner,
    PlanReport,
    in_process,
    judge_part,
    send_plan,
)
from learnhours.steps.sources import rejections_of, source_row, source_rows

__all__ = [
    "Compliance",
    "DataNote",
    "Found",
    "Job",
    "Mail",
    "Night",
    "NoSender",
    "Part",
    "PartReport",
    "PartRunner",
    "PlanReport",
    "Purged",
    "Retention",
    "agency_parts",
    "compute",
    "judged_people",
    "data_note",
    "fetch_range",
    "fetch_to_inbox",
    "files_under",
    "final_due_on",
    "in_process",
    "inbox_folder",
    "ingest_paths",
    "judge_part",
    "look_in",
    "night_taken",
    "portal_profile",
    "purge",
    "refuse_unsafe_night",
    "rejections_of",
    "roster_codes",
    "send_plan",
    "source_row",
    "source_rows",
    "tonight",
]
