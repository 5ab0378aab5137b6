"""Reads the sandbox's Stripe API with Stripe's official Python library.
Usage: SANDBOX_URL=... python stripe_client.py (the sandbox must hold the events named below)."""

import hashlib
import hmac
import os
import sys
import time

import stripe

stripe.api_key = "sk_test_sandbox"
stripe.api_base = os.environ["SANDBOX_URL"]
stripe.max_network_retries = 0

# Listing with a wildcard type, then auto-pagination over everything.
invoices = stripe.Event.list(type="invoice.*", limit=2)
assert [e.type for e in invoices.data] == ["invoice.payment_failed", "invoice.paid"], invoices
everything = [e.id for e in stripe.Event.list(limit=2).auto_paging_iter()]
assert len(everything) == int(os.environ["EXPECTED_EVENTS"]), everything
assert len(set(everything)) == len(everything)

failed = stripe.Event.list(types=["invoice.payment_failed", "charge.failed"], delivery_success=False)
assert [e.type for e in failed.data] == ["invoice.payment_failed"], failed

event = stripe.Event.retrieve(everything[0])
assert event.id == everything[0]

customer = stripe.Customer.retrieve("cus_T7aLp4qZ9cXn2W")
assert customer.email and customer.object == "customer", customer

try:
    stripe.Customer.retrieve("cus_missing")
    raise SystemExit("expected a 404")
except stripe.InvalidRequestError as e:
    assert e.http_status == 404 and e.code == "resource_missing", e

gone = stripe.Customer.retrieve("cus_gone")
assert gone.deleted is True, gone

# A customer's charges (what reconcile lists), through the library's auto-pagination.
charges = [c.id for c in stripe.Charge.list(customer=os.environ["CHARGE_CUSTOMER"], limit=1).auto_paging_iter()]
assert charges == [os.environ["CHARGE_ID"]], charges
assert stripe.Charge.list(customer="cus_gone").data == []

# A thin event, parsed and fetched as the SDK does it: the related object at
# related_object.url, and the event at /v2/core/events/{id}.
client = stripe.StripeClient(
    "sk_test_sandbox",
    base_addresses={"api": os.environ["SANDBOX_URL"]},
    max_network_retries=0,
)
secret = "whsec_wire_test"
payload = open(os.environ["THIN_FIXTURE"], "rb").read()
t = int(time.time())
signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
notification = client.parse_event_notification(payload, f"t={t},v1={signature}", secret)
assert notification.type == "v1.invoice.payment_failed", notification
invoice = notification.fetch_related_object()
assert invoice.id == "in_1SBxE9QmT3xK8rLvR3tY6uIo" and invoice.attempt_count == 2, invoice
event = notification.fetch_event()
assert event.snapshot_event == "evt_1SCyA1QmT3xK8rLvKp4Wd8Zs", event

print("stripe: OK")
sys.exit(0)
