"""Reports for finance and the programme's owners (staff scope `reports`)."""

from __future__ import annotations

from typing import Any

from api.openapi import Blueprint
from api.reports.schemas import LiabilityQuerySchema, LiabilityReportSchema
from loyalty.reports.liability import LiabilityReport, liability_report
from loyalty.staff.services import Scope
from server.core import context

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1",
    description="Programme figures for finance: the points liability (staff keys).",
)


@blp.route("/reports/liability", methods=["GET"])
@blp.staff(Scope.REPORTS)
@blp.arguments(LiabilityQuerySchema(), location="query")
@blp.response(200, LiabilityReportSchema)
def liability(args: dict[str, Any]) -> LiabilityReport:
    """Points outstanding now and their value in the program's currency; points earned,
    redeemed, expired, reversed by returns and adjusted, by calendar month in the program's
    time zone (every month of the window, quiet ones as zeros); breakage = expired / earned.
    `from` and `to` are YYYY-MM; the default is the last twelve months, this one included."""
    return liability_report(
        context.session(),
        now=context.now(),
        from_month=args["from_month"],
        to_month=args["to_month"],
    )
