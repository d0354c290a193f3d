"""What an audit event says about a request: who, what, which customers went out and
how, the outcome — and that sensitive values never land in it in clear."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator

import pytest

from dangan.audit.redaction import REDACTED, audit_key, keyed_hash
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.audit.events import USER_AGENT, as_text, event_of, head_of, post
from tests.support.api import Api
from tests.support.cleanup import remove_customers
from tests.support.world import World, missing_id

PREFIX = "审计测试"
LIST = """query AuditList($first: Int!, $search: String, $where: [CustomerCondition!]) {
  customers(first: $first, search: $search, where: $where) {
    nodes { id name phone idNumber creditRating }
  }
}"""
DETAIL = "query AuditDetail($id: ID!) { customer(id: $id) { id name } }"
CREATE = """mutation AuditCreate($input: CreateCustomerInput!) {
  createCustomer(input: $input, allowPossibleDuplicate: true) { id version phone }
}"""
UPDATE = """mutation AuditUpdate($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, version: $version, input: $input) { id phone region }
}"""
LOGIN = """mutation AuditLogin($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}"""


@pytest.fixture(scope="module", autouse=True)
async def cleanup(world: World) -> AsyncIterator[None]:
    yield
    await remove_customers(world, PREFIX)


def owned_by(world: World, who: str) -> set[uuid.UUID]:
    owner = world["alpha"].people[who].identity_id
    return {c["id"] for c in world["alpha"].customers if c["owner_id"] == owner}


async def test_a_query_names_caller_operation_document_and_customers(
    api: Api, world: World
) -> None:
    reply, request_id = await post(
        api, "alpha", world["alpha"].tokens["sales"], LIST, {"first": 50}
    )
    nodes = reply.body["data"]["customers"]["nodes"]

    event = await event_of(world["alpha"].ref, request_id)

    sales = world["alpha"].people["sales"]
    assert (event["actor_kind"], event["actor_id"]) == ("user", sales.identity_id)
    assert event["actor_name"] == "alpha-sales"
    assert event["client_address"] == "10.1.2.3" and event["user_agent"] == USER_AGENT
    assert (event["operation_type"], event["operation_name"]) == ("query", "AuditList")
    assert event["document_sha256"] == hashlib.sha256(LIST.encode()).hexdigest()
    assert event["variables"] == {"first": 50}
    assert (event["outcome"], event["error_codes"]) == ("ok", [])
    assert (
        set(event["customers"]) == {uuid.UUID(n["id"]) for n in nodes} == owned_by(world, "sales")
    )
    # Own customers: contact in full, identity masked, financial hidden.
    assert event["fields"] == {
        "Customer": {
            "name": "full",
            "phone": "full",
            "id_number": "masked",
            "credit_rating": "hidden",
        }
    }
    assert event["changes"] == []


async def test_field_levels_follow_the_callers_policy(api: Api, world: World) -> None:
    _, request_id = await post(api, "alpha", world["alpha"].tokens["auditor"], LIST, {"first": 50})

    event = await event_of(world["alpha"].ref, request_id)

    assert {uuid.UUID(str(c)) for c in event["customers"]} == {
        c["id"] for c in world["alpha"].customers
    }
    assert event["fields"]["Customer"] == {
        "name": "full",
        "phone": "masked",
        "id_number": "masked",
        "credit_rating": "masked",
    }


async def test_a_partner_app_is_the_actor_of_its_requests(api: Api, world: World) -> None:
    _, request_id = await post(api, "alpha", world["alpha"].keys["reader"], LIST, {"first": 5})

    event = await event_of(world["alpha"].ref, request_id)

    assert (event["actor_kind"], event["actor_name"]) == ("app", "reader")
    assert event["customers"] == []  # nothing shared with it: nothing went out


async def test_sensitive_variables_are_keyed_hashes_never_clear(
    api: Api, world: World, settings: Settings
) -> None:
    phone = world["alpha"].customers[0]["phone"]
    variables = {
        "first": 10,
        "search": "客户0",
        "where": [{"field": "phone", "value": phone}, {"field": "region", "value": "浙江省"}],
    }
    _, request_id = await post(api, "alpha", world["alpha"].tokens["admin"], LIST, variables)

    event = await event_of(world["alpha"].ref, request_id)

    key = audit_key(settings.secret_key)
    assert event["variables"] == {
        "first": 10,
        "search": keyed_hash(key, "客户0"),
        "where": [
            {"field": "phone", "value": keyed_hash(key, phone)},
            {"field": "region", "value": "浙江省"},
        ],
    }
    assert phone not in as_text(event) and "客户0" not in as_text(event)


async def test_a_mutation_links_its_changes_with_sensitive_values_hashed(
    api: Api, world: World, settings: Settings
) -> None:
    rng = random.Random("audit-mutation")
    phone, new_phone, id_number = make_mobile(rng), make_mobile(rng), make_id_number(rng)
    secret_note = "客户住址保密备注"
    create = {
        "kind": "INDIVIDUAL",
        "name": f"{PREFIX}甲",
        "phone": phone,
        "idNumber": id_number,
        "remarks": secret_note,
        "region": "浙江省",
    }
    token = world["alpha"].tokens["admin"]
    created, create_id = await post(api, "alpha", token, CREATE, {"input": create})
    customer = created.body["data"]["createCustomer"]
    updated, update_id = await post(
        api,
        "alpha",
        token,
        UPDATE,
        {
            "id": customer["id"],
            "version": customer["version"],
            "input": {"phone": new_phone, "region": "北京市"},
        },
    )
    assert not updated.body.get("errors"), updated.body

    create_event = await event_of(world["alpha"].ref, create_id)
    update_event = await event_of(world["alpha"].ref, update_id)

    key = audit_key(settings.secret_key)
    assert create_event["variables"]["input"]["phone"] == keyed_hash(key, phone)
    assert create_event["variables"]["input"]["region"] == "浙江省"
    for clear in (phone, new_phone, id_number, secret_note):
        assert clear not in as_text(create_event) + as_text(update_event)
    assert update_event["operation_type"] == "mutation"
    assert update_event["customers"] == [uuid.UUID(customer["id"])]
    (change,) = update_event["changes"]
    assert (change["customer"], change["action"]) == (customer["id"], "update")
    assert change["fields"]["phone"] == {
        "old": keyed_hash(key, phone),
        "new": keyed_hash(key, new_phone),
    }
    assert change["fields"]["region"] == {"old": "浙江省", "new": "北京市"}

    async def change_ids() -> list[int]:
        rows = await raw_connection().fetch(
            "SELECT id FROM customer_change WHERE customer_id = $1 ORDER BY id",
            uuid.UUID(customer["id"]),
        )
        return [row["id"] for row in rows]

    created_change, updated_change = await run_in_tenant(world["alpha"].ref, change_ids)
    assert [c["id"] for c in create_event["changes"]] == [created_change]
    assert create_event["changes"][0]["fields"]["id_number"]["new"] == keyed_hash(key, id_number)
    assert change["id"] == updated_change


@pytest.mark.parametrize(
    ("who", "query", "variables", "code"),
    [
        ("sales", DETAIL, {"id": missing_id()}, "NOT_FOUND"),
        ("auditor", CREATE, {"input": {"kind": "INDIVIDUAL", "name": f"{PREFIX}乙"}}, "FORBIDDEN"),
        (
            "admin",
            CREATE,
            {"input": {"kind": "INDIVIDUAL", "name": f"{PREFIX}丙", "phone": "12"}},
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_failures_are_recorded_with_their_codes(
    api: Api, world: World, who: str, query: str, variables: dict, code: str
) -> None:
    reply, request_id = await post(api, "alpha", world["alpha"].tokens[who], query, variables)
    assert [e["extensions"]["code"] for e in reply.body["errors"]] == [code]

    event = await event_of(world["alpha"].ref, request_id)

    assert (event["outcome"], event["error_codes"]) == ("error", [code])
    assert event["customers"] == [] and event["changes"] == []


async def test_signing_in_is_recorded_without_the_password(
    api: Api, world: World, settings: Settings
) -> None:
    email, password = "sales@alpha.test", "alpha-sales-password"
    reply, request_id = await post(
        api,
        "alpha",
        None,
        LOGIN,
        {"email": email, "password": password},
    )
    assert reply.body["data"]["login"]["token"]

    event = await event_of(world["alpha"].ref, request_id)

    # Signed in: the event names who (the e-mail in the variables stays a keyed hash).
    sales = world["alpha"].people["sales"]
    assert (event["actor_kind"], event["actor_id"]) == ("user", sales.identity_id)
    assert (event["actor_name"], event["actor_roles"]) == (sales.display_name, ["sales"])
    assert (event["operation_name"], event["outcome"]) == ("AuditLogin", "ok")
    assert event["variables"] == {
        "email": keyed_hash(audit_key(settings.secret_key), email),
        "password": REDACTED,
    }
    assert password not in as_text(event)


async def test_a_failed_sign_in_is_recorded_as_anonymous_with_its_code(
    api: Api, world: World, settings: Settings
) -> None:
    email, password = "sales@alpha.test", "not-the-password"
    reply, request_id = await post(
        api, "alpha", None, LOGIN, {"email": email, "password": password}
    )
    assert reply.body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    event = await event_of(world["alpha"].ref, request_id)

    assert (event["actor_kind"], event["actor_id"], event["actor_roles"]) == (
        "anonymous",
        None,
        [],
    )
    assert (event["outcome"], event["error_codes"]) == ("error", ["UNAUTHENTICATED"])
    assert event["actions"] == ["login"]
    assert event["variables"] == {
        "email": keyed_hash(audit_key(settings.secret_key), email),
        "password": REDACTED,
    }
    assert password not in as_text(event)


async def test_no_event_no_answer_and_nothing_written(api: Api, world: World) -> None:
    """Fail closed: when the event cannot be written (here a CHECK refuses it), the
    request fails as INTERNAL without data, and its writes are rolled back."""
    tenant = world["alpha"].ref

    async def refuse(sql: str) -> None:
        await raw_connection().execute(sql)

    await run_in_tenant(
        tenant,
        lambda: refuse(
            "ALTER TABLE audit_event ADD CONSTRAINT audit_test_refuse"
            " CHECK (operation_name NOT LIKE 'Refused%')"
        ),
    )
    head = await head_of(tenant)
    try:
        read, _ = await post(
            api,
            "alpha",
            world["alpha"].tokens["admin"],
            LIST.replace("AuditList", "RefusedList"),
            {"first": 50},
        )
        write, _ = await post(
            api,
            "alpha",
            world["alpha"].tokens["admin"],
            CREATE.replace("AuditCreate", "RefusedCreate"),
            {"input": {"kind": "INDIVIDUAL", "name": f"{PREFIX}丁"}},
        )
    finally:
        await run_in_tenant(
            tenant, lambda: refuse("ALTER TABLE audit_event DROP CONSTRAINT audit_test_refuse")
        )

    for reply in (read, write):
        assert reply.status == 500 and "data" not in reply.body
        assert [e["extensions"]["code"] for e in reply.body["errors"]] == ["INTERNAL"]
        assert "audit" not in reply.text and "constraint" not in reply.text
    assert await head_of(tenant) == head

    async def created() -> int:
        return await raw_connection().fetchval(
            "SELECT count(*) FROM customer WHERE name = $1", f"{PREFIX}丁"
        )

    assert await run_in_tenant(tenant, created) == 0


ADD_CONTACT = """mutation AuditAddContact($customer: ID!, $input: ContactPersonInput!) {
  addContactPerson(customerId: $customer, input: $input) { id phone }
}"""
CONTACTS = """query AuditContacts($id: ID!) {
  customer(id: $id) { id contactPersons { name phone title } }
}"""


async def test_records_count_with_their_customer_and_their_own_field_levels(
    api: Api, world: World, settings: Settings
) -> None:
    phone = make_mobile(random.Random("audit-contact"))
    admin = world["alpha"].tokens["admin"]
    created, _ = await post(
        api, "alpha", admin, CREATE, {"input": {"kind": "ENTERPRISE", "name": f"{PREFIX}戊"}}
    )
    customer_id = created.body["data"]["createCustomer"]["id"]
    contact = {"name": "王小明", "phone": phone, "title": "采购经理"}
    added, add_id = await post(
        api, "alpha", admin, ADD_CONTACT, {"customer": customer_id, "input": contact}
    )
    assert not added.body.get("errors"), added.body

    _, read_id = await post(
        api, "alpha", world["alpha"].tokens["auditor"], CONTACTS, {"id": customer_id}
    )

    add_event = await event_of(world["alpha"].ref, add_id)
    (change,) = add_event["changes"]
    key = audit_key(settings.secret_key)
    assert (change["action"], change["recordType"]) == ("add", "contact_person")
    assert change["fields"]["phone"] == {"old": None, "new": keyed_hash(key, phone)}
    assert change["fields"]["title"] == {"old": None, "new": "采购经理"}
    assert phone not in as_text(add_event) and "王小明" not in as_text(add_event)
    read_event = await event_of(world["alpha"].ref, read_id)
    assert read_event["customers"] == [uuid.UUID(customer_id)]
    # The auditor sees contact details masked, the basic title in full.
    assert read_event["fields"]["ContactPerson"] == {
        "name": "masked",
        "phone": "masked",
        "title": "full",
    }
