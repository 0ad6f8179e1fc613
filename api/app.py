"""The application factory: every layer of the service is assembled here, in order."""

from __future__ import annotations

import gc

from litestar import Litestar
from litestar.datastructures import State

from api.admin import admin_router
from api.billing.actions import BillingActions
from api.billing.controller import (
    SubscriptionController,
    UsageController,
    billing_portal,
    get_subscription,
    list_plans,
    start_checkout,
)
from api.catalogue.plans import configured_catalogue
from api.db.engine import Database
from api.demo.pages import DemoPagesController
from api.demo.provider import DemoGateway
from api.errors import EXCEPTION_HANDLERS
from api.gateway.base import PaymentGateway
from api.gateway.stripe_client import StripeGateway
from api.ingest.processing import EventProcessor
from api.logs import configure_logging
from api.monitoring.exposition import metrics
from api.monitoring.gauges import BusinessGauges
from api.monitoring.health import HealthChecker, health, live, ready
from api.observability.http import HttpObservability
from api.observability.tracing import configure_tracing, trace_database
from api.openapi_page import openapi_assets, openapi_config
from api.protection.layers import Protection
from api.security.controller import me
from api.security.middleware import bearer_auth
from api.security.tokens import TokenVerifier
from api.settings import Settings, get_settings
from api.webhooks.controller import WebhookController

__all__ = ["create_app"]


def _freeze_startup_objects() -> None:
    """Move everything built at startup (modules, the app, compiled SQL) out of the garbage
    collector's sight, so its collections only scan what requests allocate."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()
    configure_logging(settings)
    configure_tracing()
    plans = configured_catalogue(settings)
    db = Database(settings)
    trace_database(db.engine)
    processor = EventProcessor(db, settings)
    # Without Stripe credentials the simulator plays Stripe (demo mode), with its own local pages.
    gateway: PaymentGateway = DemoGateway(processor, plans) if settings.demo_mode else StripeGateway(settings)
    billing = BillingActions(db, processor, gateway, plans, settings)
    demo_pages = [DemoPagesController] if settings.demo_mode else []
    protection = Protection.build(settings, db)
    verifier = TokenVerifier(settings)

    return Litestar(
        route_handlers=[
            WebhookController,
            live,
            ready,
            health,
            metrics,
            me,
            list_plans,
            get_subscription,
            start_checkout,
            SubscriptionController,
            billing_portal,
            UsageController,
            admin_router,
            openapi_assets(),
            *demo_pages,
        ],
        middleware=[
            HttpObservability(settings.slow_request_seconds),
            *protection.middleware(settings, bearer_auth(verifier, protection.failed_authentications())),
        ],
        before_request=protection.screener(settings),
        before_send=[protection.headers(settings)],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers=EXCEPTION_HANDLERS,
        # Handlers reach shared services through the app state: resolving them as dependencies
        # costs about 0.3 ms a request, which the webhook route cannot afford.
        state=State(
            {
                "db": db,
                "processor": processor,
                "plans": plans,
                "gateway": gateway,
                "billing": billing,
                "protection": protection,
                "gauges": BusinessGauges(
                    db, plans, settings.metrics_refresh_seconds, stale_grace_days=settings.analytics_stale_grace_days
                ),
                "health": HealthChecker(settings, db, protection.redis, gateway),
                "token_verifier": verifier,
            }
        ),
        on_startup=[_freeze_startup_objects],
        on_shutdown=[gateway.close, protection.close, db.dispose],
        openapi_config=openapi_config(),
        debug=False,
    )
