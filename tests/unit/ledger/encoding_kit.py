"""Hypothesis strategies for the values of the canonical encoding (:mod:`ledger.encoding`)."""

from __future__ import annotations

from hypothesis import strategies as st

canonical_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
"""Any value the encoding holds: nil, booleans, 64-bit integers, text, bytes, and lists and
maps with text keys of those."""
