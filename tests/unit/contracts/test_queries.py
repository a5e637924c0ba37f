"""Queries not covered with their domain: defaults, params, intervals, nonces."""

from __future__ import annotations

from contracts import queries

from .harness import INTERVAL, Chain, as_obj, member_key


def test_defaults_for_unknown_ids() -> None:
    chain = Chain()
    assert as_obj(queries.get_shipment(chain.state, "NOPE")) is None
    assert as_obj(queries.get_shipment_history(chain.state, "NOPE")) == []
    assert queries.shipment_proof_keys(chain.state, "NOPE") == [b"shipment/NOPE"]
    assert as_obj(queries.get_permit(chain.state, "NOPE")) is None
    assert as_obj(queries.get_permit_history(chain.state, "NOPE")) == []
    assert as_obj(queries.get_organisation(chain.state, "nobody")) is None
    account = as_obj(queries.get_energy_account(chain.state, "solar-1"))
    assert account["produced_wh"] == 0 and account["balance"] == 0
    position = as_obj(queries.get_energy_position(chain.state, "solar-1", 0))
    assert position["offered_wh"] == 0 and position["org"] == "solar-1"
    market = as_obj(queries.get_market(chain.state, 0))
    assert market["status"] == "open" and market["offers"] == [] and market["trades"] == []
    assert queries.trades_by_account(chain.state, chain.index, "solar-1") == []
    assert queries.find_shipments_by_status(chain.index, "held") == []


def test_params_intervals_and_nonces() -> None:
    chain = Chain()
    assert queries.get_params(chain.state)["restricted_hs_codes"] == ["360100", "9302"]
    assert queries.energy_interval_ms(chain.state) == INTERVAL
    assert queries.interval_start(chain.state, 5 * INTERVAL + 7) == 5 * INTERVAL
    admin = member_key("exporter", "admin")
    assert queries.get_nonce(chain.state, admin.public_key) == 0
    chain.ok(
        admin,
        "identity.revoke_member",
        {"public_key": member_key("exporter", "clerk").public_key, "reason": "x"},
    )
    assert queries.get_nonce(chain.state, admin.public_key) == 1
