"""The ERP feed's health, for the main window's status bar."""

from __future__ import annotations

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.exemption_feed import FeedProblem, feed_problems
from ecms_desktop.views.operations import Operation


def read_feed_problems(db: Database, company_id: int | None) -> Operation[list[FeedProblem]]:
    """Connectors stopped at an event the ERP refused for good, or failing for now."""
    return Operation(lambda _p, _c: feed_problems(db, company_id))
