"""Drives the sandbox with HubSpot's official Python client (hubspot-api-client)
and checks what the client parsed. Usage: SANDBOX_URL=... SANDBOX_TOKEN=... python hubspot_client.py"""

import os
import sys

from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate as TaskInput,
)
from hubspot.crm.properties import PropertyCreate

url = os.environ["SANDBOX_URL"]
client = HubSpot(access_token=os.environ["SANDBOX_TOKEN"], host=url)

# A unique custom property, as `paybridge setup` creates it.
prop = client.crm.properties.core_api.create(
    object_type="contacts",
    property_create=PropertyCreate(
        name="stripe_customer_id",
        label="Stripe Customer ID",
        type="string",
        field_type="text",
        group_name="contactinformation",
        has_unique_value=True,
    ),
)
assert prop.name == "stripe_customer_id" and prop.has_unique_value is True, prop

# Batch upsert by idProperty: created first, updated the second time.
batch = BatchInputSimplePublicObjectBatchInputUpsert(
    inputs=[
        SimplePublicObjectBatchInputUpsert(
            id="cus_py_1",
            id_property="stripe_customer_id",
            properties={"email": "py1@example.com", "firstname": "Py"},
        ),
        SimplePublicObjectBatchInputUpsert(
            id="cus_py_2",
            id_property="stripe_customer_id",
            properties={"email": "py2@example.com"},
        ),
    ]
)
first = client.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
assert first.status == "COMPLETE", first
assert [r.new for r in first.results] == [True, True], first
assert first.results[0].properties["stripe_customer_id"] == "cus_py_1"
assert first.results[0].created_at.year >= 2024
again = client.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
assert [r.new for r in again.results] == [False, False], again
ids = [r.id for r in first.results]
assert [r.id for r in again.results] == ids

# Batch read, with a missing id: the client returns the 207 body parsed.
read = client.crm.contacts.batch_api.read(
    batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=ids[0]), SimplePublicObjectId(id="999999")],
        properties=["email", "firstname"],
        properties_with_history=[],
    )
)
assert [r.id for r in read.results] == [ids[0]], read
assert read.results[0].properties == {"email": "py1@example.com", "firstname": "Py"}, read.results[0].properties
assert read.num_errors == 1 and read.errors[0].category == "OBJECT_NOT_FOUND", read

# Search.
found = client.crm.contacts.search_api.do_search(
    public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "email", "operator": "EQ", "value": "py2@example.com"}]}],
        properties=["email", "stripe_customer_id"],
        limit=10,
    )
)
assert found.total == 1 and found.results[0].id == ids[1], found
assert found.results[0].properties["stripe_customer_id"] == "cus_py_2"

# A duplicate email is a 409 the client raises with the body intact.
try:
    client.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"email": "PY1@example.com"})
    )
    raise SystemExit("expected a 409")
except ApiException as e:
    assert e.status == 409, e.status
    assert f"Existing ID: {ids[0]}" in e.body, e.body

# Batch create with a trace id per input: a duplicate is one error of a 207, naming its
# trace id; the other input is created.
created = client.crm.contacts.batch_api.create(
    batch_input_simple_public_object_batch_input_for_create=BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "py3@example.com"}, associations=[], object_write_trace_id="t-new"),
            SimplePublicObjectBatchInputForCreate(properties={"email": "py1@example.com"}, associations=[], object_write_trace_id="t-dup"),
        ]
    )
)
assert created.num_errors == 1 and created.errors[0].category == "CONFLICT", created
assert created.errors[0].status == "error", created.errors[0]
assert created.errors[0].context["objectWriteTraceId"] == ["t-dup"], created.errors[0]
assert [r.properties["email"] for r in created.results] == ["py3@example.com"], created

# A task associated to the contact.
task = client.crm.objects.tasks.basic_api.create(
    simple_public_object_input_for_create=TaskInput(
        properties={"hs_timestamp": "2026-10-02T09:00:00.000Z", "hs_task_subject": "Thank-you call", "hs_task_priority": "HIGH"},
        associations=[
            PublicAssociationsForObject(
                to=PublicObjectId(id=ids[0]),
                types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=204)],
            )
        ],
    )
)
assert task.properties["hs_task_subject"] == "Thank-you call", task
links = client.crm.associations.v4.basic_api.get_page(object_type="contacts", object_id=ids[0], to_object_type="tasks")
assert [l.to_object_id for l in links.results] == [task.id], links
assert links.results[0].association_types[0].type_id == 203

# List membership.
added = client.crm.lists.memberships_api.add(list_id="1", request_body=[ids[0], "424242"])
assert added.records_ids_added == [ids[0]], added
assert added.record_ids_missing == ["424242"], added
page = client.crm.lists.memberships_api.get_page(list_id="1")
assert [m.record_id for m in page.results] == [ids[0]], page

# Owners.
owners = client.crm.owners.owners_api.get_page(email="ada.manager@example.com")
assert owners.results[0].id == "101", owners

print("hubspot-api-client: OK")
sys.exit(0)
