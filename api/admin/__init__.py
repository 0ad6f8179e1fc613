"""The admin routes, under one router at ``/api/admin`` with the admin guard: failed and dead
events, security (incidents, blocks), the business alerts, the Stripe sync and the operator's
overview."""

from __future__ import annotations

from litestar import Router

from api.admin.alerts import AdminAlertsController
from api.admin.dashboard import AdminDashboardController
from api.admin.events import AdminEventsController
from api.admin.security import AdminSecurityController
from api.admin.sync import AdminSyncController
from api.security.middleware import requires_admin

__all__ = ["admin_router"]

admin_router = Router(
    path="/api/admin",
    guards=[requires_admin],
    route_handlers=[
        AdminEventsController,
        AdminSecurityController,
        AdminAlertsController,
        AdminSyncController,
        AdminDashboardController,
    ],
)
"""Every admin route; the admin role is checked once, here."""
