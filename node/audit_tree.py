"""The state tree beside the replay: a streaming audit's second core.

A streaming audit (:mod:`node.audit_scratch`) re-executes the chain in one process, and
about two fifths of that process's work was the state tree's update (hashing, encoding and
writing the pages every block rewrites). The tree's update depends on nothing but the
tree's previous pages and the block's state changes, and nothing the contracts do reads
the tree (they read the flat table of current values, ``STATE_LEAF``). So here the tree
runs in a process of its own (spawned: see :meth:`TreeBeside.start`), with a LevelDB
scratch of its own for its two tables (``STATE_NODE``, ``STATE_ROOT``):

* the replay writes each block's flat rows itself, sends the block's changes to the tree
  process and goes on with the next block, using the state root its stored header claims
  (:class:`DeferredTree`);
* the tree process applies them in height order and answers each block's root;
  :class:`TreeBeside` checks every answer against the root that block's header claims,
  at most :data:`MAX_AHEAD` blocks behind the replay;
* at the end, the comparison reads the tree's tables from the tree process's scratch and
  everything else from the replay's (:class:`SplitScratch`).

The replay's checks are the same: each block is re-executed on the state of the blocks
before it (the flat table, written by the replay), its re-executed header must equal the
stored one in every field, and its state root must be the one the tree computes from the
changes of every block so far — checked a few blocks later instead of at once. The rows
compared are the same rows. Whatever does not check out (a root that differs, the tree
process failing, any finding of the replay) makes the audit start over with the tree in
the replay's own process (``ChainAuditor._replays``), which names the first problem as
before: a chain with a bad block costs one more pass, a clean one is checked on two cores.
docs/audit.md, "The state tree beside the replay".
"""

from __future__ import annotations

import multiprocessing.context
import os
import queue
import signal
from collections.abc import Iterator, Mapping
from functools import partial
from itertools import takewhile, zip_longest
from typing import Any

from ledger.digest import sha256_digest
from ledger.state import NodeCache, StateTree, flat_key, flat_row, hashed_entry
from ledger.state_retire import Retired
from ledger.storage import OverlayStore, WriteBatch, keys, open_leveldb
from ledger.storage.protocol import KVReader, prefix_upper_bound
from ledger.storage.reopening import DEFAULT_BUDGET_BYTES, ReopeningStore
from node.audit_scratch import MAX_OPEN_FILES, DiskScratch
from node.chain import ChainStore
from node.collector import settle_after_start
from node.executor import Executor
from node.sigcache import SignatureCache
from node.sigcheck import die_with_parent

TREE_TABLES = (keys.STATE_NODE, keys.STATE_ROOT)  # sorted: filed by the tree process
MAX_AHEAD = 4  # blocks the replay may run ahead of the tree's answers
ANSWER_WAIT_S = 1.0  # how often a wait for the tree process checks that it still runs

Change = tuple[bytes, bytes, bytes | None]  # a state key's hash, the key, its value (None: gone)
Answer = tuple[int, bytes, str | None]  # height (0: done), root, what failed


class TreeDiverged(Exception):
    """The tree's root for a block is not the one its header claims, or the tree process
    failed: the audit starts over with the tree in the replay's process, which names it."""


class TreeBeside:
    """The replay's end of the tree process: sends each block's changes, checks roots."""

    def __init__(
        self,
        ctx: multiprocessing.context.BaseContext,
        path: str,
        genesis_rows: list[tuple[bytes, bytes]],
        genesis_root: bytes,
        second_copy: str | None = None,
    ) -> None:
        self.path = path
        self.jobs: Any = ctx.Queue()
        self.answers: Any = ctx.Queue()
        self.compared: Any = ctx.Queue()  # (rows, whether all equal) of its own tables
        self.process: Any = ctx.Process(  # type: ignore[attr-defined]
            target=serve_tree,
            args=(self.jobs, self.answers, self.compared, path, genesis_rows, genesis_root),
            kwargs={"second_copy": second_copy, "parent": os.getpid()},
            name="cityledger-audit-tree",
            daemon=True,
        )
        self.process.start()
        self.claimed = genesis_root  # the state root the block being executed claims
        self.expected: dict[int, bytes] = {}  # height -> its claimed root, until answered

    @classmethod
    def start(
        cls, path: str, rows: DiskScratch, chain: ChainStore, second_copy: str | None = None
    ) -> TreeBeside:
        """The tree process for a replay into ``rows``, which holds the genesis state.

        Spawned, never forked: LevelDB's background thread (the one that compacts) is
        started once per process, and a forked child inherits the flag saying it runs but
        not the thread, so its own store's writes would stall for ever once compaction is
        due (they did, 2026-12-07, auditing a 191,710-transaction chain)."""
        genesis_rows = [(k, v) for table in TREE_TABLES for k, v in rows.iterate(table)]
        ctx = multiprocessing.get_context("spawn")
        return cls(ctx, path, genesis_rows, chain.genesis_state_root(), second_copy)

    def send(self, height: int, items: list[Change]) -> bytes:
        """Hand a block's changes to the tree process; the root its header claims."""
        self.expected[height] = self.claimed
        self.jobs.put((height, items))
        while len(self.expected) > MAX_AHEAD:
            self._take(self._wait())
        while True:
            try:
                answer = self.answers.get_nowait()
            except queue.Empty:
                return self.claimed
            self._take(answer)

    def finish(self) -> None:
        """Wait for every root; :class:`TreeDiverged` unless each matched its header.
        The tree process then closes its scratch, which :meth:`store` opens."""
        self.jobs.put(None)
        while True:
            answer = self._wait()
            if answer[0] == 0 and answer[2] is None:
                break
            self._take(answer)
        if self.expected:
            raise TreeDiverged(f"no root for heights {sorted(self.expected)}")

    def comparison(self) -> tuple[int, bool]:
        """(rows, whether every one was equal) of the tree process's comparison of its own
        tables with the audited store's second copy; (0, False) if it could not make it.
        The process has then ended, and its scratch can be opened (:meth:`store`)."""
        while True:
            try:
                compared: tuple[int, bool] = self.compared.get(timeout=ANSWER_WAIT_S)
                break
            except queue.Empty:
                if not self.process.is_alive():
                    compared = (0, False)
                    break
        self.process.join()
        return compared

    def store(self) -> DiskScratch:
        """The tree's rows, for the comparison: read whole, in key order, reopened as read
        (a third store mapped whole would raise the audit's peak resident size)."""
        return DiskScratch(self.path, reopen_every=DEFAULT_BUDGET_BYTES)

    def stop(self) -> None:
        """End the tree process, whatever state it is in (idempotent)."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        for channel in (self.jobs, self.answers, self.compared):
            channel.cancel_join_thread()  # nothing left to deliver matters now
            channel.close()

    def _wait(self) -> Answer:
        while True:
            try:
                answer: Answer = self.answers.get(timeout=ANSWER_WAIT_S)
                return answer
            except queue.Empty:
                if not self.process.is_alive():
                    raise TreeDiverged("the tree process ended") from None

    def _take(self, answer: Answer) -> None:
        height, root, failure = answer
        if failure is not None:
            raise TreeDiverged(failure)
        if self.expected.pop(height, None) != root:
            raise TreeDiverged(f"block {height}: state root differs")


def serve_tree(
    jobs: Any,
    answers: Any,
    compared: Any,
    path: str,
    genesis_rows: list[tuple[bytes, bytes]],
    root: bytes,
    *,
    second_copy: str | None = None,
    parent: int | None = None,
) -> None:
    """The tree process: apply each block's changes in order, answer each root; then,
    given the audited store's second copy, compare its tables with it. It ends with
    ``parent`` (the replay's process) however that ends: it would otherwise wait for
    the next block for ever after a SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the replay's to handle
    if parent is not None:
        die_with_parent(parent)
    try:
        store = DiskScratch(path)
        batch = WriteBatch()
        for key, value in genesis_rows:
            batch.put(key, value)
        store.write(batch)  # filed at height 0, as the replay's genesis rows are
        tree = StateTree(store, root, cache=NodeCache())
        settle_after_start()  # the collector set as a node's (it walked the page cache)
        while (job := jobs.get()) is not None:
            height, items = job
            entries = sorted(hashed_entry(kh, value, key) for kh, key, value in items)
            batch = WriteBatch()
            new_root = tree.apply_entries(entries, batch, height=height)
            store.height = height
            store.write(batch)
            answers.put((height, new_root, None))
        store.close()
        answers.put((0, b"", None))
    except Exception as exc:  # any failure: the replay starts over without this process
        answers.put((-1, b"", f"the tree process failed: {type(exc).__name__}: {exc}"))
        return
    try:
        compared.put(compare_tree_tables(path, second_copy) if second_copy else (0, False))
    except Exception:  # the replay's process compares them then
        compared.put((0, False))


def compare_tree_tables(path: str, audited_path: str) -> tuple[int, bool]:
    """(rows, whether all equal): the tree's tables of the scratch at ``path`` against the
    audited store at ``audited_path``, both read whole in key order, reopened as read."""
    own = DiskScratch(path, reopen_every=DEFAULT_BUDGET_BYTES)
    opener = partial(open_leveldb, audited_path, block_cache_mb=8, max_open_files=MAX_OPEN_FILES)
    audited = ReopeningStore(opener)
    rows = 0
    try:
        for table in TREE_TABLES:
            for mine, theirs in zip_longest(own.iterate(table), audited.iterate(table)):
                if mine != theirs:
                    return rows, False
                rows += 1
        return rows, True
    finally:
        own.close()
        audited.close()


class DeferredTree(StateTree):
    """A block's state for the replay: reads the flat table; :meth:`apply` writes the flat
    rows and hands the tree's part to the tree process (:class:`TreeBeside`)."""

    def __init__(self, store: KVReader, root: bytes, beside: TreeBeside) -> None:
        super().__init__(store, root)
        self.beside = beside

    def apply(
        self,
        changes: Mapping[bytes, bytes | None],
        batch: WriteBatch,
        retired: list[Retired] | None = None,
        *,
        height: int,
    ) -> bytes:
        if retired is not None:
            raise ValueError("a pruned store's audit keeps the tree in the replay")
        if not changes:
            return self.root
        items: list[Change] = []
        for key, value in changes.items():
            if type(key) is not bytes:
                raise TypeError(f"state keys are bytes, got {type(key).__name__}")
            kh = sha256_digest(key)
            items.append((kh, key, value))
            if value is None:
                batch.delete(flat_key(kh))
            elif type(value) is bytes:
                batch.put(flat_key(kh), flat_row(key, value))
            else:
                raise TypeError(f"state values are bytes or None, got {type(value).__name__}")
        self.root = self.beside.send(height, items)
        return self.root


class SplitScratch:
    """The re-executed rows of a replay whose tree ran beside it: the tree's tables from
    the tree process's scratch, every other row from the replay's (its copies of the
    genesis tree rows are not read)."""

    def __init__(self, rows: DiskScratch, tree: DiskScratch) -> None:
        self.rows = rows
        self.tree = tree

    def _holder(self, key: bytes) -> DiskScratch:
        return self.tree if key[:2] in TREE_TABLES else self.rows

    def get(self, key: bytes) -> bytes | None:
        return self._holder(key).get(key)

    def written_height(self, key: bytes) -> int | None:
        return self._holder(key).written_height(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if len(prefix) >= 2:
            return self._holder(prefix).iterate(prefix, start=start, reverse=reverse)
        if prefix or start is not None or reverse:
            raise NotImplementedError("the split scratch is read whole, or by table")
        return self._whole()

    def _whole(self) -> Iterator[tuple[bytes, bytes]]:
        """Every row in key order: the replay's rows between the tree's tables."""
        after: bytes | None = None
        for table in TREE_TABLES:
            yield from _below(table, self.rows.iterate(b"", start=after))
            yield from self.tree.iterate(table)
            after = prefix_upper_bound(table)
        yield from self.rows.iterate(b"", start=after)

    def close(self) -> None:
        self.rows.close()
        self.tree.close()


def rows_outside(store: KVReader, tables: tuple[bytes, ...]) -> Iterator[tuple[bytes, bytes]]:
    """Every row of ``store`` in key order but those of ``tables`` (sorted table prefixes),
    whose ranges are skipped, not read."""
    after: bytes | None = None
    for table in tables:
        yield from _below(table, store.iterate(b"", start=after))
        after = prefix_upper_bound(table)
    yield from store.iterate(b"", start=after)


def _below(end: bytes, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """``rows`` (in key order) up to ``end``."""
    return takewhile(lambda kv: kv[0] < end, rows)


class TreeBesideExecutor(Executor):
    """The replay's executor: each block's state is a :class:`DeferredTree`."""

    def __init__(self, chain: ChainStore, beside: TreeBeside) -> None:
        super().__init__(chain, SignatureCache(capacity=1))
        self.beside = beside

    def state_tree(self, store: OverlayStore, root: bytes) -> StateTree:
        return DeferredTree(store, root, self.beside)
