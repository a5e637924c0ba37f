"""Keys and validator sets shared by the simulator and the consensus unit tests.

Keys come from ``PrivateKey.from_label`` and are built once at import, so a run of
hundreds of scenarios never pays for key generation.
"""

from __future__ import annotations

from ledger.crypto import PrivateKey
from ledger.validators import Validator, ValidatorSet

CHAIN_ID = "sim-chain"
MAX_VALIDATORS = 10
KEYS: tuple[PrivateKey, ...] = tuple(
    PrivateKey.from_label(f"sim-validator-{i}") for i in range(MAX_VALIDATORS)
)
OUTSIDER = PrivateKey.from_label("sim-outsider")


def validator_set(n: int, powers: list[int] | None = None) -> ValidatorSet:
    """Validators v0..v{n-1} with the shared keys (power 1 each unless given)."""
    powers = powers or [1] * n
    return ValidatorSet(tuple(Validator(f"v{i}", KEYS[i].public_key, powers[i]) for i in range(n)))


def index_of(validators: ValidatorSet, public_key: bytes) -> int:
    for i, v in enumerate(validators.validators):
        if v.public_key == public_key:
            return i
    raise KeyError(public_key.hex())
