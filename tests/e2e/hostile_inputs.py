"""Hostile input for the tests in test_hostile.py: hypothesis strategies that make
malformed API bodies, request paths and peer frames — random values, mutated valid
transactions, non-canonical signatures, deep nesting, forged consensus messages."""

from __future__ import annotations

import json

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from ledger.votes import NIL, Proposal, Vote, VoteType
from tests.e2e.load import agency_admins

ED25519_L = 2**252 + 27742317777372353535851937790883648493
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# --- strategies --------------------------------------------------------------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=24)
    | st.binary(max_size=48)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=24,
)
json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=24,
)


def _nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


def _valid_tx(chain_id: str, nonce: int = 10**6) -> Transaction:
    key = agency_admins()[0]
    payload = {
        "public_key": PrivateKey.from_label("hostile/x").public_key,
        "name": "x",
        "roles": ["inspector"],
    }
    return Transaction.create(key, chain_id, "identity.register_member", nonce, payload)


def _non_canonical_signature(sig: bytes) -> bytes:
    """The same signature with S + L: a valid-looking but non-canonical encoding."""
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    return sig[:32] + s.to_bytes(32, "little") if s < 2**256 else sig[:32] + bytes(32)


@st.composite
def tx_mutations(draw: st.DrawFn, chain_id: str) -> bytes:
    raw = bytearray(_valid_tx(chain_id).encode())
    how = draw(
        st.sampled_from(
            [
                "flip",
                "truncate",
                "append",
                "sig-noncanonical",
                "sig-zero",
                "field-type",
                "extra-field",
            ]
        )
    )
    if how == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(raw)
    if how == "truncate":
        return bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    if how == "append":
        return bytes(raw) + draw(st.binary(min_size=1, max_size=16))
    obj = msgpack.unpackb(bytes(raw), raw=False)
    if how == "sig-noncanonical":
        obj["signature"] = _non_canonical_signature(obj["signature"])
    elif how == "sig-zero":
        obj["signature"] = bytes(64)
    elif how == "field-type":
        field = draw(st.sampled_from(sorted(obj)))
        obj[field] = draw(leaves)
    else:
        obj[draw(st.text(min_size=1, max_size=8))] = draw(leaves)
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def api_bodies(chain_id: str) -> st.SearchStrategy[tuple[bytes, str | None]]:
    tx_hex = tx_mutations(chain_id).map(bytes.hex)
    json_body = st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        tx_hex.map(lambda h: json.dumps({"tx": h}).encode()),
        st.lists(tx_hex, min_size=1, max_size=5).map(lambda hs: json.dumps({"txs": hs}).encode()),
        st.sampled_from(
            [
                _nested(50_000, b"[", b"]"),
                b'{"txs": ' + _nested(10_000, b"[", b"]") + b"}",
                b'{"tx": "' + b"ab" * 200_000 + b'"}',
                b'{"txs": [' + b",".join([b'"00"'] * 10_001) + b"]}",
                b'{"tx": 1e999999}',
                b"\xff\xfe\x00",
            ]
        ),
    )
    msgpack_body = st.one_of(
        values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
        tx_mutations(chain_id).map(lambda raw: msgpack.packb({"tx": raw}, use_bin_type=True)),
        st.sampled_from(
            [
                b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
                b"\xdb\xff\xff\xff\xff" + b"a",  # a string claiming 4 GiB
                _nested(100_000, b"\x91", b"\xc0")[:100_001],
                b"\xc7\x01\x01\x00",  # an ext type
                b"\xcb" + b"\x00" * 8,  # a float
            ]
        ),
    )
    return st.one_of(
        st.tuples(json_body, st.sampled_from(["application/json", None, "text/plain"])),
        st.tuples(msgpack_body, st.sampled_from(["application/msgpack", "application/x-msgpack"])),
        st.tuples(
            st.binary(max_size=2048),
            st.sampled_from(
                [None, "application/json", "application/msgpack", "multipart/form-data; boundary=z"]
            ),
        ),
    )


path_parts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["-1", "0", "9" * 19, "9" * 40, "latest", "1e3", "0x10", " 1", "%00", "..", "a" * 5000]
    ),
    st.binary(min_size=0, max_size=40).map(bytes.hex),
)
get_templates = st.sampled_from(
    [
        "/v1/blocks/{}",
        "/v1/blocks/{}/certificate",
        "/v1/txs/{}",
        "/v1/state/{}",
        "/v1/log/inclusion/{}",
        "/v1/log/consistency?old={}&new={}",
        "/v1/permits/{}",
        "/v1/permits/{}/validity?at={}",
        "/v1/shipments/{}",
        "/v1/orgs/{}",
        "/v1/orgs?after={}&limit={}",
        "/v1/energy/accounts/{}",
        "/v1/energy/market/{}",
        "/v1/shipments?party={}&party={}",
        "/v1/state/{}?height={}",
        "/v1/{}",
        "/{}",
    ]
)


# --- peer frames -------------------------------------------------------------------------------


def frame(kind: str, body: object) -> bytes:
    packed: bytes = msgpack.packb({"b": body, "t": kind}, use_bin_type=True)
    return packed


@st.composite
def peer_frames(draw: st.DrawFn, chain_id: str, validator_keys: list[bytes]) -> bytes:
    signer = PrivateKey.from_label(f"hostile/{draw(st.integers(0, 3))}")
    victim_key = draw(st.sampled_from(validator_keys))
    height = draw(st.one_of(st.integers(1, 50), st.just(2**62), st.integers(1, 2**63 - 1)))
    round_ = draw(st.one_of(st.integers(0, 3), st.integers(0, 10_000)))
    how = draw(
        st.sampled_from(
            [
                "raw",
                "typed",
                "vote-forged",
                "vote-noncanonical",
                "vote-unsigned",
                "proposal-forged",
                "status-far",
                "sync-req",
                "sync-resp-junk",
                "txs-bad-sig",
                "nested",
            ]
        )
    )
    if how == "raw":
        return draw(st.binary(max_size=4096))
    if how == "typed":
        kind = draw(
            st.sampled_from(
                ["txs", "proposal", "vote", "status", "sync_req", "sync_resp", "hello", ""]
            )
        )
        return frame(kind, draw(values))
    if how.startswith("vote"):
        block_hash = draw(
            st.sampled_from([NIL, bytes(32), draw(st.binary(min_size=32, max_size=32))])
        )
        vote = Vote.create(
            signer,
            chain_id,
            VoteType(draw(st.integers(1, 2))),
            height,
            min(round_, 9999),
            block_hash,
        )
        obj = vote.to_obj()
        if how == "vote-forged":  # a validator's name on someone else's signature
            obj["validator"] = victim_key
        elif how == "vote-noncanonical":
            obj["validator"] = victim_key
            obj["signature"] = _non_canonical_signature(vote.signature)
        else:
            obj["signature"] = bytes(64)
        return frame("vote", obj)
    if how == "proposal-forged":
        p = Proposal.create(signer, chain_id, height, min(round_, 9999), bytes(32), -1)
        obj = p.to_obj() | {"proposer": victim_key}
        return frame("proposal", {"proposal": obj, "block": draw(values)})
    if how == "status-far":
        return frame("status", {"height": draw(st.integers(10**6, 2**63 - 1))})
    if how == "sync-req":
        return frame(
            "sync_req",
            {"from": draw(st.integers(0, 2**63 - 1)), "max": draw(st.integers(0, 10**6))},
        )
    if how == "sync-resp-junk":
        return frame(
            "sync_resp", {"blocks": draw(st.lists(values, max_size=3)), "tip_cert": draw(values)}
        )
    if how == "txs-bad-sig":
        obj = _valid_tx(chain_id, draw(st.integers(0, 300))).to_obj()
        obj["signature"] = draw(st.binary(min_size=64, max_size=64))
        return frame("txs", [obj])
    return _nested(draw(st.integers(30, 5000)), b"\x91", b"\xc0")
