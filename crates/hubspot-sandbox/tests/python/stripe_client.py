"""Reads the sandbox's Stripe API with Stripe's official Python library.
Usage: SANDBOX_URL=... python stripe_client.py (the sandbox must hold the events named below)."""

import os
import sys

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

print("stripe: OK")
sys.exit(0)
