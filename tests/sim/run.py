"""Run seeded simulation scenarios from the command line (``make sim SEEDS=N``).

    python -m tests.sim.run --seeds N [--start S] [--validators 4|7] [--jobs J] [-v]

Runs seeds S .. S+N-1 (n alternates 4/7 by seed parity unless ``--validators``),
prints every failing seed with its scenario and last events, then a summary:
scenarios, heights committed, violations (must be 0), wall time. Exits 1 on any
violation. Results do not depend on ``--jobs``: each scenario is a pure function
of its seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing import Pool

from tests.sim.world import Result, run_scenario

_validators: int | None = None


def _init(validators: int | None) -> None:
    global _validators
    _validators = validators


def _one(seed: int) -> Result:
    return run_scenario(seed, _validators)


def results(seeds: range, validators: int | None, jobs: int) -> Iterator[Result]:
    if jobs <= 1:
        _init(validators)
        yield from map(_one, seeds)
        return
    with Pool(jobs, initializer=_init, initargs=(validators,)) as pool:
        yield from pool.imap(_one, seeds, chunksize=16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.run", description=__doc__)
    parser.add_argument("--seeds", type=int, default=100, help="how many scenarios")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--validators", type=int, choices=(4, 7), default=None)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per scenario")
    args = parser.parse_args(argv)
    started = time.monotonic()
    seeds = range(args.start, args.start + args.seeds)
    scenarios = heights = 0
    failed: list[int] = []
    violations = 0
    totals: Counter[str] = Counter()
    max_round = 0
    for result in results(seeds, args.validators, args.jobs):
        scenarios += 1
        heights += result.heights
        max_round = max(max_round, result.stats["max_round"])
        totals.update(result.stats)
        if args.verbose:
            status = "ok" if result.ok else "FAILED"
            print(
                f"seed {result.seed:>6} n={result.n} {status:<6} heights={result.heights:<3} "
                f"sim={result.sim_time}ms events={result.events}  {result.description}",
                flush=True,
            )
        if not result.ok:
            failed.append(result.seed)
            violations += len(result.violations)
            print(result.report(), "\n", file=sys.stderr, flush=True)
    wall = time.monotonic() - started
    print(
        f"scenarios: {scenarios}  heights committed: {heights}  violations: {violations}"
        f"  wall time: {wall:.1f}s"
    )
    print(
        f"  (evidence found: {totals['evidence']}, blocks synced: {totals['synced']}, "
        f"signatures refused: {totals['double_sign_refused']}, messages dropped: "
        f"{totals['dropped']}, highest decision round: {max_round})"
    )
    if failed:
        print(f"failing seeds: {' '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
