"""The light client: checking a node's answers without trusting the node.

Pure code: it imports :mod:`ledger` and :mod:`contracts`, never the node, aiohttp,
click or rich, so the CLI, the benchmarks and any other client check answers the
same way. Everything starts from the genesis file the user holds: its validator
set and chain id. An answer is accepted only when

1. its commit certificate carries more than 2/3 of the genesis validators' power
   for exactly the header that came with it (:mod:`lightclient.headers`);
2. every record in it is proven by a state proof against that header's
   ``state_root``, under the key the record must live at (:mod:`lightclient.records`);
3. every transaction it relies on is proven in a certified header's log or block
   (:mod:`lightclient.receipts`, :mod:`lightclient.history`).

Whether a proven answer may be called *verified* is decided in one place,
:func:`lightclient.answers.verify_answer`, the only way to build a
:class:`~lightclient.answers.Verified`: the answer is from the chain of the
user's genesis (another one is a :class:`~lightclient.errors.GenesisMismatch`
naming both hashes), its certified block is fresh enough (or the age the user
asked for), and every record with a history came with all of it.

Each failure raises :class:`lightclient.errors.VerificationError` saying what did
not check out.

=============================  ====================================================
:mod:`lightclient.answers`     ``verify_answer``: genesis, freshness, whole histories
:mod:`lightclient.errors`      ``VerificationError``, ``GenesisMismatch``, ``answer_field``
:mod:`lightclient.headers`     certified headers: a commit certificate against genesis
:mod:`lightclient.records`     state records and ``/v1/state`` answers, by state proof
:mod:`lightclient.receipts`    a receipt in its block's tx and results roots and the log
:mod:`lightclient.shipments`   a shipment record and its whole proven history
:mod:`lightclient.history`     each history entry's transaction committed (provenance)
:mod:`lightclient.search`      shipment search results, each proven, matching, in order
:mod:`lightclient.permits`     permit records, whole histories, the permit at a time
:mod:`lightclient.blocks`      a block answer against its header's tx and evidence roots
:mod:`lightclient.evidence`    committed equivocation evidence, re-verified
:mod:`lightclient.checkpoints` published checkpoints and the log consistency proof
:mod:`lightclient.bundles`     self-contained proof bundles, checked offline
=============================  ====================================================
"""
