"""Stripe in the operational app: payment intents for invoices, and webhooks that update the books.

- `intents`: create (or reuse) a payment intent for an invoice's amount due, through the stripe SDK.
- `signature`: verify a webhook delivery (HMAC over the raw body, any of several secrets, time window).
- `queue`: store each verified event once; list and requeue failed ones.
- `processing`: apply queued events to the books in `created` order, idempotently, out of order safely.
"""
