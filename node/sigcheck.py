"""Checking a batch of signatures in a worker process (audits, admission, catch-up).

A module of its own, with nothing but what the check needs, so that a spawned worker
imports little.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator

import nacl.bindings
import nacl.exceptions

from ledger.crypto import Purpose, signing_bytes


def verify_signatures(job: tuple[str, list[tuple[int, int, bytes, bytes, bytes]]]) -> list[int]:
    """Pool worker: positions in ``job`` whose transaction signature does not verify.

    ``job`` is ``(chain_id, [(height, index, sender, body, signature), ...])``.
    """
    chain_id, items = job
    bad = []
    for pos, (_height, _index, sender, body, signature) in enumerate(items):
        try:
            nacl.bindings.crypto_sign_open(
                signature + signing_bytes(Purpose.TRANSACTION, chain_id, body), sender
            )
        except (nacl.exceptions.BadSignatureError, ValueError):
            bad.append(pos)
    return bad


def verify_batch(
    job: tuple[str, list[tuple[int, int, bytes, bytes, bytes]], list[tuple[bytes, bytes, bytes]]],
) -> tuple[list[int], list[int]]:
    """Pool worker: the transactions whose signature does not verify (positions, as
    :func:`verify_signatures`), and the positions of the payload signatures that do not:
    ``job`` is ``(chain_id, transaction items, [(public key, signature, signed bytes)])``."""
    chain_id, items, signed = job
    bad_signed = []
    for pos, (public_key, signature, message) in enumerate(signed):
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_key)
        except (nacl.exceptions.BadSignatureError, ValueError):
            bad_signed.append(pos)
    return verify_signatures((chain_id, items)) if items else [], bad_signed


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when the one that started it ends.

    A pool's workers otherwise outlive a node that is killed (SIGKILL runs none of its
    clean-up): Linux sends them SIGKILL when their parent dies (``PR_SET_PDEATHSIG``).
    Elsewhere this does nothing, and a worker ends when the node closes its pool.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(0)


@contextlib.contextmanager
def default_sigterm() -> Iterator[None]:
    """While inside (where a pool forks its workers), SIGTERM has its default action.

    A fork inherits the parent's Python signal handlers (the CLI's ``bench`` turns
    SIGTERM into an interrupt; a test process may hold any). ``Pool.terminate`` ends
    its workers with SIGTERM, and one that arrives between the fork and the moment the
    child's interpreter resets its pending signals is lost: that worker goes on waiting
    for a task, and the pool waits for it forever (an audit in the test suite, run
    after a bench command, did). With the default action the kernel ends the worker.
    Outside the main thread handlers cannot be changed, and nothing is."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
