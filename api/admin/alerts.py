"""Admin routes over the business alerts: their history (open ones first) and acknowledgement."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from analytics.alerts.history import AlertView, acknowledge_alert, recent_alerts
from api.security.tokens import Principal

__all__ = ["AdminAlertsController"]


class AdminAlertsController(Controller):
    path = "/alerts"
    tags = ["admin"]

    @get("/", summary="Business alerts", description="Open alerts first, then the newest resolved ones.")
    async def list_alerts(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[str | None, QueryParameter(pattern="^(firing|resolved)$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[AlertView]:
        return await recent_alerts(request.app.state.db, limit, status)

    @post(
        "/{alert_id:int}/acknowledge",
        status_code=200,
        summary="Acknowledge an alert",
        description="Records who acknowledged it and when; an open alert stays open until it resolves.",
    )
    async def acknowledge(self, request: Request[Principal, Any, Any], alert_id: FromPath[int]) -> AlertView:
        found = await acknowledge_alert(request.app.state.db, alert_id, request.user.user_id)
        if found is None:
            raise NotFoundException(detail=f"There is no alert {alert_id}.")
        return found
