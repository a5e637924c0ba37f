"""``cityledger bench``: throughput, finality latency, catch-up and resource use of a real network.

The engine behind :mod:`cli.bench_cmd` (see ``docs/performance.md`` for the method):

* :mod:`benchmarks.ceiling` — Ed25519 verifications per second on this machine, the ceiling;
* :mod:`benchmarks.population` — bench organisations, member keys and the untimed setup phases;
* :mod:`benchmarks.mix` and :mod:`benchmarks.workload` — the pre-signed timed workload
  (realistic contract mix or small transactions) with 5 % invalid transactions;
* :mod:`benchmarks.cluster` — a network of real node processes on loopback, always stopped
  by pid, with CPU, RSS and disk sampling from ``/proc``;
* :mod:`benchmarks.driver` — the open-loop submitter and the ``/v1/events`` block watchers;
* :mod:`benchmarks.results` — figures, the rich table and the JSON document;
* :mod:`benchmarks.run`, :mod:`benchmarks.catchup`, :mod:`benchmarks.query` — the scenarios;
* :mod:`benchmarks.profile` — py-spy sampling of every node during the timed phase.
"""
