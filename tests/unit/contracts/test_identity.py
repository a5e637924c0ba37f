"""identity.register_org, identity.register_member, identity.revoke_member."""

from __future__ import annotations

from contracts import queries

from .harness import Chain, as_obj, event_types, key, member_key

CUSTOMS_ADMIN = member_key("customs", "admin")
EXPORTER_ADMIN = member_key("exporter", "admin")
EXPORTER_CLERK = member_key("exporter", "clerk")
NEW_ADMIN = key("newco/admin")
NEW_OPS = key("newco/ops")


def org_payload(**over: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "id": "newco",
        "name": "New Co Logistics",
        "kind": "carrier",
        "city": "Sejong",
        "members": [
            {"public_key": NEW_ADMIN.public_key, "name": "admin", "roles": ["admin"]},
            {"public_key": NEW_OPS.public_key, "name": "ops", "roles": ["carrier"]},
        ],
    }
    payload.update(over)
    return payload


def test_founding_agency_admin_registers_an_organisation() -> None:
    chain = Chain()
    receipt = chain.ok(CUSTOMS_ADMIN, "identity.register_org", org_payload())
    assert event_types(receipt) == [
        "identity.org_registered",
        "identity.member_registered",
        "identity.member_registered",
    ]
    org = as_obj(queries.get_organisation(chain.state, "newco"))
    assert org is not None and org["kind"] == "carrier" and not org["founding"]
    assert org["members"] == [NEW_ADMIN.public_key.hex(), NEW_OPS.public_key.hex()]
    member = as_obj(queries.get_member(chain.state, NEW_OPS.public_key))
    assert member is not None and member["org"] == "newco" and member["roles"] == ["carrier"]
    # the new organisation's admin can now manage it
    chain.ok(
        NEW_ADMIN,
        "identity.register_member",
        {"public_key": key("newco/2").public_key, "name": "two", "roles": ["carrier"]},
    )


def test_register_org_rejections() -> None:
    chain = Chain()
    # a trader's admin is an admin, but not of a founding agency
    chain.fails("forbidden", EXPORTER_ADMIN, "identity.register_org", org_payload())
    # only admins
    chain.fails(
        "forbidden_role", member_key("customs", "officer"), "identity.register_org", org_payload()
    )
    # a carrier cannot have customs officers
    bad_roles = org_payload(
        members=[{"public_key": NEW_ADMIN.public_key, "name": "a", "roles": ["admin", "customs"]}]
    )
    chain.fails("forbidden_role", CUSTOMS_ADMIN, "identity.register_org", bad_roles)
    # payload shape
    chain.fails("bad_payload", CUSTOMS_ADMIN, "identity.register_org", org_payload(kind="bank"))
    chain.fails("bad_payload", CUSTOMS_ADMIN, "identity.register_org", org_payload(id="Bad Id"))
    chain.fails(
        "bad_payload",
        CUSTOMS_ADMIN,
        "identity.register_org",
        org_payload(
            members=[{"public_key": NEW_OPS.public_key, "name": "o", "roles": ["carrier"]}]
        ),
    )  # no admin
    chain.fails("bad_payload", CUSTOMS_ADMIN, "identity.register_org", org_payload(extra=1))
    chain.fails(
        "bad_payload",
        CUSTOMS_ADMIN,
        "identity.register_org",
        org_payload(
            members=[{"public_key": NEW_ADMIN.public_key, "name": "a", "roles": ["meter", "admin"]}]
        ),
    )
    # duplicates
    chain.fails("duplicate", CUSTOMS_ADMIN, "identity.register_org", org_payload(id="exporter"))
    taken = org_payload(
        members=[{"public_key": EXPORTER_CLERK.public_key, "name": "a", "roles": ["admin"]}]
    )
    chain.fails("duplicate", CUSTOMS_ADMIN, "identity.register_org", taken)


def test_register_member() -> None:
    chain = Chain()
    newbie = key("exporter/new")
    receipt = chain.ok(
        EXPORTER_ADMIN,
        "identity.register_member",
        {"public_key": newbie.public_key, "name": "new", "roles": ["trader"]},
    )
    assert receipt.events[0].attrs == {
        "org": "exporter",
        "public_key": newbie.public_key,
        "roles": ["trader"],
    }
    org = as_obj(queries.get_organisation(chain.state, "exporter"))
    assert org is not None and newbie.public_key.hex() in org["members"]
    # the new member can act in its role
    chain.ok(
        newbie,
        "permit.apply",
        {"id": "P1", "type": "business", "address": "1 Jung-gu", "description": "office"},
    )


def test_register_member_rejections() -> None:
    chain = Chain()
    payload = {"public_key": key("x").public_key, "name": "x", "roles": ["trader"]}
    chain.fails("forbidden_role", EXPORTER_CLERK, "identity.register_member", payload)
    chain.fails(
        "forbidden_role",
        EXPORTER_ADMIN,
        "identity.register_member",
        {**payload, "roles": ["customs"]},
    )
    chain.fails("bad_payload", EXPORTER_ADMIN, "identity.register_member", {**payload, "roles": []})
    chain.fails(
        "bad_payload",
        EXPORTER_ADMIN,
        "identity.register_member",
        {**payload, "roles": ["trader", "trader"]},
    )
    chain.fails(
        "bad_payload",
        EXPORTER_ADMIN,
        "identity.register_member",
        {**payload, "public_key": b"short"},
    )
    chain.fails(
        "duplicate",
        EXPORTER_ADMIN,
        "identity.register_member",
        {**payload, "public_key": CUSTOMS_ADMIN.public_key},
    )


def test_revoke_member() -> None:
    chain = Chain()
    receipt = chain.ok(
        EXPORTER_ADMIN,
        "identity.revoke_member",
        {"public_key": EXPORTER_CLERK.public_key, "reason": "left the company"},
    )
    assert event_types(receipt) == ["identity.member_revoked"]
    member = as_obj(queries.get_member(chain.state, EXPORTER_CLERK.public_key))
    assert member is not None and member["status"] == "revoked"
    assert (
        member["revoked_height"] == chain.height and member["revoked_reason"] == "left the company"
    )
    assert chain.send(EXPORTER_CLERK, "permit.apply", {}).code == "revoked"
    # the revoked key cannot be registered again
    chain.fails(
        "duplicate",
        EXPORTER_ADMIN,
        "identity.register_member",
        {"public_key": EXPORTER_CLERK.public_key, "name": "x", "roles": ["trader"]},
    )


def test_revoke_member_rejections() -> None:
    chain = Chain()
    payload = {"public_key": EXPORTER_CLERK.public_key, "reason": "x"}
    chain.fails(
        "forbidden_role",
        EXPORTER_CLERK,
        "identity.revoke_member",
        {"public_key": EXPORTER_ADMIN.public_key, "reason": "x"},
    )
    chain.fails("forbidden", CUSTOMS_ADMIN, "identity.revoke_member", payload)  # other org
    chain.fails(
        "forbidden",
        EXPORTER_ADMIN,
        "identity.revoke_member",
        {"public_key": EXPORTER_ADMIN.public_key, "reason": "x"},
    )
    chain.fails(
        "not_found",
        EXPORTER_ADMIN,
        "identity.revoke_member",
        {"public_key": key("nobody").public_key, "reason": "x"},
    )
    chain.fails(
        "bad_payload",
        EXPORTER_ADMIN,
        "identity.revoke_member",
        {"public_key": EXPORTER_CLERK.public_key},
    )
    chain.ok(EXPORTER_ADMIN, "identity.revoke_member", payload)
    chain.fails("wrong_state", EXPORTER_ADMIN, "identity.revoke_member", payload)
