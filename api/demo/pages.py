"""The pages demo mode shows in place of Stripe's: Checkout, the billing portal, and a return page
standing in for the client app. Plain server-rendered HTML, every value escaped, under a strict
Content-Security-Policy (no scripts at all)."""

from __future__ import annotations

import time
from html import escape
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.models import payment_history, user_subscriptions
from api.demo.provider import DemoGateway

__all__ = ["DemoPagesController"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1a1a2e}"
    ".card{border:1px solid #ddd;border-radius:10px;padding:1.5rem;margin:1rem 0}"
    "button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem}"
    ".muted{color:#667}.error{color:#b00020}table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.3rem;border-bottom:1px solid #eee}"
)
_DECLINE = "Your card was declined. (Demo: the card ending 0002 always is.) Choose another card."


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f'<body><p class="muted">faddl demo mode: no real payment is made.</p>{body}</body></html>'
    )
    return Response(
        content=html,
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def _date(stamp: Any) -> str:
    return stamp.strftime("%Y-%m-%d") if stamp is not None else "-"


def _gateway(request: Request[Any, Any, Any]) -> DemoGateway:
    gateway = request.app.state.gateway
    assert isinstance(gateway, DemoGateway)
    return gateway


def _checkout_form(session: dict[str, Any], error: str | None = None) -> str:
    price = f"{_money(session['unit_amount'], session['currency'])} / {escape(session['interval'])}"
    trial = f"<p>{int(session['trial_days'])}-day free trial, then {price}.</p>" if session.get("trial_days") else ""
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (
        f'<h1>Subscribe to {escape(session["plan"].title())}</h1><div class="card">'
        f"<p><strong>{price}</strong></p>{trial}"
        f'<p class="muted">For {escape(session.get("email") or session["user_id"])}</p>{problem}'
        f'<form method="post" action="/demo/checkout/{escape(session["id"])}">'
        '<p><label><input type="radio" name="card" value="4242" checked> Card ending 4242 (succeeds)</label><br>'
        '<label><input type="radio" name="card" value="0002"> Card ending 0002 (declined)</label></p>'
        '<button type="submit" id="pay">Subscribe</button></form></div>'
        f'<p><a href="{escape(session["cancel_url"])}">Cancel and go back</a></p>'
    )


class DemoPagesController(Controller):
    path = "/demo"
    include_in_schema = False

    @get("/checkout/{session_id:str}")
    async def checkout(self, request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[str]:
        session = await _gateway(request).checkout_session(session_id)
        if session is None:
            return _page("Not found", "<h1>This checkout does not exist.</h1>", 404)
        if await _gateway(request).checkout_completed(session_id):
            # Reopened after paying (the back button, a bookmark): say so, never offer to pay again.
            target = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
            return _page(
                "Paid",
                f"<h1>This checkout is paid.</h1>"
                f"<p>Your {escape(session['plan'].title())} subscription has started.</p>"
                f'<p><a href="{escape(target)}">Return to the app</a></p>',
            )
        if session["expires_at"] < time.time():
            return _page("Expired", "<h1>This checkout has expired.</h1><p>Start again from the app.</p>", 410)
        return _page(f"Subscribe to {session['plan']}", _checkout_form(session))

    @post("/checkout/{session_id:str}", status_code=303)
    async def pay(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        gateway = _gateway(request)
        session = await gateway.checkout_session(session_id)
        if session is None:
            return _page("Not found", "<h1>This checkout does not exist.</h1>", 404)
        if session["expires_at"] < time.time():
            return _page("Expired", "<h1>This checkout has expired.</h1>", 410)
        if data.get("card") != "4242":
            return _page(f"Subscribe to {session['plan']}", _checkout_form(session, _DECLINE), 402)
        await gateway.complete_checkout(session)
        target = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
        return Redirect(path=target, status_code=303)

    @get("/billing-portal/{session_id:str}")
    async def portal(self, request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[str]:
        gateway = _gateway(request)
        session = await gateway.portal_session(session_id)
        if session is None:
            return _page("Not found", "<h1>This billing portal session does not exist.</h1>", 404)
        if session.get("expires_at", 0) < time.time():  # a session recorded without expiry is expired
            expired = "<h1>This billing portal session has expired.</h1><p>Open it again from the app.</p>"
            return _page("Expired", expired, 410)
        customer = session["customer"]

        async def read(conn: AsyncConnection) -> tuple[list[Any], list[Any]]:
            subs = (
                await conn.execute(
                    select(user_subscriptions)
                    .where(user_subscriptions.c.stripe_customer_id == customer)
                    .order_by(user_subscriptions.c.created.desc())
                )
            ).all()
            invoices = (
                await conn.execute(
                    select(payment_history)
                    .where(
                        and_(
                            payment_history.c.stripe_customer_id == customer,
                            payment_history.c.status.is_distinct_from("deleted"),  # a deleted draft is gone
                        )
                    )
                    .order_by(payment_history.c.created.desc())
                    .limit(24)
                )
            ).all()
            return list(subs), list(invoices)

        subs, invoices = await gateway.processor.db.run(read)
        sub_rows = "".join(
            f"<tr><td>{escape(s.price_id or '-')}</td><td>{escape(s.status)}</td>"
            f"<td>{_date(s.current_period_end)}</td><td>{'yes' if s.cancel_at_period_end else 'no'}</td></tr>"
            for s in subs
        )
        invoice_rows = "".join(
            f"<tr><td>{_date(i.created)}</td><td>{_money(i.amount_due or 0, i.currency or 'usd')}</td>"
            f"<td>{escape(i.status or '-')}</td></tr>"
            for i in invoices
        )
        body = (
            "<h1>Billing</h1>"
            '<div class="card"><h2>Subscriptions</h2><table><tr><th>Price</th><th>Status</th><th>Period ends</th>'
            f"<th>Cancels</th></tr>{sub_rows}</table></div>"
            '<div class="card"><h2>Invoices</h2><table><tr><th>Date</th><th>Amount</th><th>Status</th></tr>'
            f"{invoice_rows}</table></div>"
            f'<p><a href="{escape(session["return_url"])}">Return to the app</a></p>'
        )
        return _page("Billing", body)

    @get("/return")
    async def back_in_app(self, request: Request[Any, Any, Any]) -> Response[str]:
        params = ", ".join(f"{escape(k)}={escape(v)}" for k, v in request.query_params.items())
        return _page(
            "Back in the app",
            f"<h1>Back in the app</h1><p>This page stands in for the client app ({params or 'no parameters'}). "
            "Read the result with <code>GET /api/subscription</code>.</p>",
        )
