"""A local stand-in for the learning portals, for tests and `learnhours demo --fetch`."""

from learnhours.emulator.portal import (
    AGENCY_EXPORT_HEADER,
    ELEARN_HEADER,
    FaultPlan,
    PortalEmulator,
)
from learnhours.emulator.samples import make_national_id, sample_agency_rows, sample_elearn_rows
from learnhours.emulator.web import serve

__all__ = [
    "AGENCY_EXPORT_HEADER",
    "ELEARN_HEADER",
    "FaultPlan",
    "PortalEmulator",
    "make_national_id",
    "sample_agency_rows",
    "sample_elearn_rows",
    "serve",
]
