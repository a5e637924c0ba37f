"""Round timeouts that grow with the round (paper §3: timeoutX(r) = initX + r·delta).

``empty_block_interval_ms`` is not a round timeout: it is the heartbeat, how long a
height waits before its round 0 when no transaction is there to commit (0: it never
waits, every height starts at once). Durations are integer milliseconds; the core
never reads a clock, it only asks the layer above to call it back
(``ScheduleTimeout`` → ``TimeoutFired``). Growing timeouts are what give liveness
after GST: eventually a round is long enough for every correct process to hear every
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.errors import ValidationError
from node.consensus.types import Step


class _TimeoutParams(Protocol):
    """The timeout fields of ``ledger.genesis.ConsensusParams``."""

    @property
    def timeout_propose_ms(self) -> int: ...
    @property
    def timeout_prevote_ms(self) -> int: ...
    @property
    def timeout_precommit_ms(self) -> int: ...
    @property
    def timeout_delta_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    propose_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500
    empty_block_interval_ms: int = 0  # the idle heartbeat (Step.WAIT); 0: never wait

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValidationError(f"timeout {name} must be a non-negative integer")
        if min(self.propose_ms, self.prevote_ms, self.precommit_ms) < 1:
            raise ValidationError("base timeouts must be at least 1 ms")

    @classmethod
    def from_params(cls, params: _TimeoutParams) -> TimeoutConfig:
        """From the genesis file's consensus parameters (one delta for all three)."""
        delta = params.timeout_delta_ms
        return cls(
            params.timeout_propose_ms or 1,
            delta,
            params.timeout_prevote_ms or 1,
            delta,
            params.timeout_precommit_ms or 1,
            delta,
        )

    def propose(self, round_: int) -> int:
        """timeoutPropose(round) — line 21."""
        return self.propose_ms + round_ * self.propose_delta_ms

    def prevote(self, round_: int) -> int:
        """timeoutPrevote(round) — line 35."""
        return self.prevote_ms + round_ * self.prevote_delta_ms

    def precommit(self, round_: int) -> int:
        """timeoutPrecommit(round) — line 48."""
        return self.precommit_ms + round_ * self.precommit_delta_ms

    def duration(self, step: Step, round_: int) -> int:
        if step is Step.WAIT:
            return self.empty_block_interval_ms
        if step is Step.PROPOSE:
            return self.propose(round_)
        if step is Step.PREVOTE:
            return self.prevote(round_)
        if step is Step.PRECOMMIT:
            return self.precommit(round_)
        raise ValueError(f"no timeout for step {step.name}")
