"""Per-round message log with running power sums: no re-scans on the hot path.

A :class:`VoteTally` keeps, for one (round, vote type), the first vote of each
validator, the total power that voted and the power behind each block hash. Adding
a vote reports whether it made a 2f+1 threshold *cross* — the only moments at which
a vote can enable one of the paper's "upon" rules — so the core re-evaluates its
rules only then.

An equivocating validator's *further* votes (for other values) are kept too, in
``conflicting``: the paper's "2f+1 ⟨PREVOTE, h, r, id(v)⟩" counts every message for
id(v), so a byzantine vote for v counts towards v even if the same validator's vote
for nil arrived first — otherwise correct processes that saw the two versions in
different orders could never agree that a polka exists, and a locked process would
wait forever. The total ("2f+1 ⟨·, h, r, ∗⟩") counts each validator once.
"""

from __future__ import annotations

from ledger.votes import NIL, Proposal, Vote

CROSSED_TOTAL = 1  # 2f+1 ⟨·, h, r, ∗⟩
CROSSED_VALUE = 2  # 2f+1 ⟨·, h, r, id(v)⟩ for a block (not nil)
CROSSED_NIL = 4  # 2f+1 ⟨·, h, r, nil⟩


class VoteTally:
    __slots__ = ("conflicting", "power", "quorum", "quorum_values", "total", "votes")

    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.votes: dict[bytes, Vote] = {}  # the first vote of each validator
        self.conflicting: dict[tuple[bytes, bytes], Vote] = {}  # (validator, value) -> vote
        self.power: dict[bytes, int] = {}
        self.total = 0
        self.quorum_values: list[bytes] = []  # non-nil hashes that reached 2f+1, in order

    def add(self, vote: Vote, power: int) -> int:
        """Count a vote from a validator not yet in this tally; return CROSSED_* bits."""
        self.votes[vote.validator] = vote
        quorum = self.quorum
        before = self.total
        self.total = after = before + power
        crossed = CROSSED_TOTAL if before < quorum <= after else 0
        value = vote.block_hash
        had = self.power.get(value, 0)
        self.power[value] = had + power
        if had < quorum <= had + power:
            if value == NIL:
                crossed |= CROSSED_NIL
            else:
                crossed |= CROSSED_VALUE
                self.quorum_values.append(value)
        return crossed

    def add_conflicting(self, vote: Vote, power: int) -> int:
        """Count a validator's vote for a further value: for that value, not the total."""
        self.conflicting[(vote.validator, vote.block_hash)] = vote
        value = vote.block_hash
        had = self.power.get(value, 0)
        self.power[value] = had + power
        if had < self.quorum <= had + power:
            if value == NIL:
                return CROSSED_NIL
            self.quorum_values.append(value)
            return CROSSED_VALUE
        return 0

    def conflicting_count(self, validator: bytes) -> int:
        return sum(1 for who, _ in self.conflicting if who == validator)

    def has_quorum(self, value: bytes) -> bool:
        return self.power.get(value, 0) >= self.quorum

    def for_value(self, value: bytes) -> list[Vote]:
        """Every vote for ``value`` (one per validator)."""
        out = [v for v in self.votes.values() if v.block_hash == value]
        out.extend(v for (_, val), v in self.conflicting.items() if val == value)
        return out

    def all_votes(self) -> list[Vote]:
        return [*self.votes.values(), *self.conflicting.values()]


class RoundState:
    """Everything received for one round of the current height, plus which of the
    once-per-round ("for the first time") rules have fired."""

    __slots__ = (
        "fired_34",
        "fired_36",
        "fired_47",
        "precommits",
        "prevotes",
        "proposal",
        "proposals",
        "round",
        "sender_power",
        "senders",
    )

    def __init__(self, round_: int, quorum: int) -> None:
        self.round = round_
        self.proposal: Proposal | None = None  # the first one: lines 22 and 28 act on it
        self.proposals: dict[bytes, Proposal] = {}  # by block hash: lines 36 and 49
        self.prevotes = VoteTally(quorum)
        self.precommits = VoteTally(quorum)
        self.senders: set[bytes] = set()  # line 55, counted while the round is ahead of us
        self.sender_power = 0
        self.fired_34 = False
        self.fired_36 = False
        self.fired_47 = False

    def messages(self) -> list[Proposal | Vote]:
        out: list[Proposal | Vote] = list(self.proposals.values())
        out.extend(self.prevotes.all_votes())
        out.extend(self.precommits.all_votes())
        return out
