"""``make bench-core``: the state tree, the Merkle log and the consensus core, on one core,
and what a junk batch costs a node.

Prints a table and writes machine-readable JSON (``--json FILE``, default
``bench-core.json``). Targets from the issues: state updates >= 20,000/s in
batches of 5,000, proofs generated >= 10,000/s and verified >= 20,000/s on a
1,000,000-key state; consensus core >= 50,000 vote events/s; a batch of 10,000
transactions from an unregistered sender < 50 ms of node CPU
(:mod:`benchmarks.admission`, which starts one node process; ``--no-admission`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from rich.console import Console
from rich.table import Table

TARGETS = {
    "state_update_per_s": 20_000,
    "state_prove_per_s": 10_000,
    "state_verify_per_s": 20_000,
    "core_votes_per_s_n4": 50_000,
    "core_votes_per_s_n7": 50_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000, help="state size and log size")
    parser.add_argument("--json", default="bench-core.json", help="where to write the figures")
    parser.add_argument("--no-admission", action="store_true", help="skip the junk-batch figures")
    args = parser.parse_args()
    from benchmarks import admission, consensus_bench, merkle_bench, state_bench

    console = Console()
    figures: dict[str, float] = {}
    with console.status(f"state tree: {args.keys:,} keys…"):
        figures |= state_bench.run(args.keys)
    with console.status(f"Merkle log: {args.keys:,} leaves…"):
        figures |= merkle_bench.run(args.keys)
    with console.status("consensus core…"):
        figures |= consensus_bench.run()
    if not args.no_admission:
        with console.status("junk batches against a node…"):
            figures |= admission.run(log=lambda line: None)["figures"]
    table = Table(title=f"bench-core on {os.cpu_count()} cores ({platform.python_version()})")
    for col in ("figure", "value", "target", ""):
        table.add_column(col)
    for name, value in figures.items():
        target, ceiling = TARGETS.get(name), admission.TARGET_MAX_MS.get(name)
        if ceiling is not None:
            table.add_row(
                name, f"{value:,.1f}", f"< {ceiling:,}", "ok" if value < ceiling else "ABOVE"
            )
            continue
        verdict = "" if target is None else ("ok" if value >= target else "BELOW")
        table.add_row(name, f"{value:,.1f}", "" if target is None else f">= {target:,}", verdict)
    console.print(table)
    doc = {"cores": os.cpu_count(), "python": platform.python_version(), "figures": figures}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    console.print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
