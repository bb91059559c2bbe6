"""Benchmarks: ``make bench`` runs ``python -m bench`` (see ``bench/__main__.py``).

- ``pipeline_bench``: the real worker and relay processes on the ``bench`` local stack
  (throughput, one transaction per event, latency, replay, memory, CPU per event), with
  ``environment`` (stack, fresh database, seed), ``workload`` (the purchases), ``kafka_io``,
  ``processes``, ``cpu``, ``pyspy`` and ``report``; ``replay_run`` is its replay process.
- ``profile_engine``: ``python -m bench.profile_engine``, the engine's batch path in one
  process, timed statement by statement and profiled with cProfile.
- ``stats_bench``: the domain statistics over a million cards.
"""
