"""合规审查: the compliance report of a tenant for a period (see :mod:`.report`)."""

from dangan.services.compliance.files import ReportFile, export_compliance_report
from dangan.services.compliance.period import MAX_DAYS, Period, check_period
from dangan.services.compliance.render import FORMATS, render_report
from dangan.services.compliance.report import ComplianceReport, build_report, compliance_report

__all__ = [
    "FORMATS",
    "MAX_DAYS",
    "ComplianceReport",
    "Period",
    "ReportFile",
    "build_report",
    "check_period",
    "compliance_report",
    "export_compliance_report",
    "render_report",
]
