"""Stripe: a payment intent for an invoice, the webhook endpoint, and the events that need attention.

`POST /webhooks/stripe` is not authenticated by a session or token: the Stripe signature over the raw
body is its authentication, so it must stay exempt from cookie-session CSRF checks.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ez360.core.money import from_minor
from ez360.core.settings import Settings
from operational_api.api.context import Principal, get_db, require
from operational_api.api.problems import problem
from operational_api.api.schemas import Timestamp
from operational_api.db.models import Company, Invoice
from operational_api.db.scoped import Scoped
from operational_api.stripe_integration import intents, processing, queue, signature

router = APIRouter(tags=["stripe"])

PROCESS_BATCH = 100


class PaymentIntentOut(BaseModel):
    invoice_id: int
    payment_intent_id: str
    client_secret: str | None  # for Stripe.js on the paying side; never stored by EZ360
    status: str
    currency: str
    amount: Decimal
    amount_minor: int
    stripe_account: str | None
    created: bool


class WebhookAck(BaseModel):
    received: bool
    event_id: str
    duplicate: bool


class StripeEventOut(BaseModel):
    event_id: str
    type: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: Timestamp | None
    received_at: Timestamp
    created: int


def _kick(background: BackgroundTasks, request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.stripe_process_on_delivery:
        background.add_task(processing.process_pending, request.app.state.sessionmaker, PROCESS_BATCH,
                            config=processing.ProcessingConfig.from_settings(settings))


@router.post("/api/v1/companies/{company_id}/invoices/{invoice_id}/payment-intent", response_model=PaymentIntentOut,
             status_code=201, summary="A Stripe payment intent for an invoice's amount due",
             responses={200: {"description": "an open intent for the same amount already existed"}})
def create_payment_intent(request: Request, response: Response, background: BackgroundTasks,
                          invoice_id: int = Path(..., ge=1),
                          principal: Principal = Depends(require("payments:write")),
                          db: Session = Depends(get_db)) -> PaymentIntentOut:
    company = db.get(Company, principal.company_id)
    invoice = Scoped(db, company.id).get(Invoice, invoice_id)
    result = intents.create_for_invoice(db, company, invoice, intents.stripe_client(request.app.state.settings),
                                        user_id=principal.user_id)
    db.commit()  # before the background run looks for events that were waiting for this intent
    if result.created:
        _kick(background, request)
    else:
        response.status_code = 200
    row = result.row
    return PaymentIntentOut(invoice_id=invoice.id, payment_intent_id=row.stripe_payment_intent_id,
                            client_secret=result.client_secret, status=row.status, currency=row.currency,
                            amount=from_minor(row.amount_minor, row.currency), amount_minor=row.amount_minor,
                            stripe_account=row.stripe_account, created=result.created)


@router.post("/webhooks/stripe", response_model=WebhookAck, summary="Stripe webhook deliveries (signed)",
             responses={400: {"description": "bad signature, stale or future timestamp, wrong livemode"},
                        503: {"description": "no webhook secret configured for this mode"}})
async def stripe_webhook(request: Request, background: BackgroundTasks):
    settings: Settings = request.app.state.settings
    secrets = settings.stripe_webhook_secrets()
    if not secrets:
        mode = "LIVE" if settings.stripe_livemode else "TEST"
        return problem(503, "Stripe webhooks not configured",
                       f"set EZ360_STRIPE_WEBHOOK_SECRETS_{mode} to the endpoint's signing secret", request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > signature.MAX_BODY_BYTES:
        return problem(413, "Payload too large", "a Stripe event is far smaller than this", request)
    body = await request.body()
    try:
        if len(body) > signature.MAX_BODY_BYTES:
            raise signature.WebhookRefused("the body is larger than any Stripe event")
        signature.verify(body, request.headers.get("stripe-signature"), secrets)
        event = signature.parse_event(body)
    except signature.WebhookRefused as exc:
        return problem(400, "Webhook refused", exc.reason, request)
    if event["livemode"] is not settings.stripe_livemode:
        expected = "live" if settings.stripe_livemode else "test"
        got = "live" if event["livemode"] else "test"
        return problem(400, "Webhook refused", f"a {got}-mode event reached this {expected}-mode deployment",
                       request)
    stored = await run_in_threadpool(queue.enqueue, request.app.state.sessionmaker, event, body.decode("utf-8"))
    _kick(background, request)
    return WebhookAck(received=True, event_id=stored.event_id, duplicate=stored.duplicate)


@router.get("/api/v1/companies/{company_id}/stripe/events", response_model=list[StripeEventOut],
            summary="Stripe events of this company that failed or wait too long (for alerting)")
def stripe_events_needing_attention(limit: int = Query(100, ge=1, le=500),
                                    principal: Principal = Depends(require("ledger:read")),
                                    db: Session = Depends(get_db)) -> list[StripeEventOut]:
    rows = queue.events_needing_attention(db, company_id=principal.company_id, limit=limit)
    return [StripeEventOut(event_id=r.event_id, type=r.type, status=r.status, attempts=r.attempts,
                           last_error=r.last_error, next_attempt_at=r.next_attempt_at, received_at=r.received_at,
                           created=r.created) for r in rows]
