"""llmcache side by side with the caches users would pick instead (issue 8).

Every contender gets the same requests (the same model, prompt and options as key material)
and the same ~1 KB answers, in one process run, and every figure is reported as a ratio
against a raw floor measured in that same run: ``cachetools`` for in-memory caches,
``diskcache`` for on-disk ones, raw ``redis-py`` for Redis. ``run.py`` is the entry point::

    .venv/bin/python benchmarks/peers/run.py            # full run, writes docs/benchmarks.md
    .venv/bin/python benchmarks/peers/run.py --quick    # a smoke run with small counts

Modules: ``workload`` (requests and answers), ``contenders`` (one adapter per cache),
``measure`` (timing loops), ``probe`` (the subprocess side: memory and cold start),
``semantic`` (quality on the labeled pairs), ``vectors`` (lookup latency against index
size), ``machine`` (what ran where), ``report`` (the markdown and the plots).
"""
