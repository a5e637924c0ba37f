"""Benchmarks: a real network's figures (``cityledger bench``) and the core's (``make bench-core``).

``make bench-core`` runs :mod:`benchmarks.core` over the pure data structures
(:mod:`benchmarks.state_bench`, :mod:`benchmarks.merkle_bench`) and the consensus core
(:mod:`benchmarks.consensus_bench`). The rest is the engine
behind :mod:`cli.bench_cmd` (``docs/performance.md`` has the method and the figures):

* :mod:`benchmarks.ceiling` — Ed25519 verifications per second on this machine, the ceiling;
* :mod:`benchmarks.population` — bench organisations, member keys and the untimed setup phases;
* :mod:`benchmarks.mix` and :mod:`benchmarks.workload` — the pre-signed timed workload
  (realistic contract mix or small transactions) with 5 % invalid transactions;
* :mod:`benchmarks.cluster` — a network of real node processes on loopback, always stopped
  by pid, with CPU, RSS and disk sampling from ``/proc``;
* :mod:`benchmarks.driver` — the open-loop submitter and the ``/v1/events`` block watchers;
* :mod:`benchmarks.results` — figures, the rich table and the JSON document;
* :mod:`benchmarks.run`, :mod:`benchmarks.catchup`, :mod:`benchmarks.query` — the scenarios;
* :mod:`benchmarks.stages` — the CPU each step of a transaction costs inside the nodes,
  in-process, without the network;
* :mod:`benchmarks.profile` — py-spy sampling of every node during the timed phase.
"""
