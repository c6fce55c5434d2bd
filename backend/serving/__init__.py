"""Serving: a GRU4Rec artifact answered on the CPU, per-session state in memory, the live model of each site.

- ``engine.GRU4RecEngine``: loads an artifact (read-only memory maps) and runs the Numba kernels;
- ``state.SessionStateCache``: session id -> hidden state, bounded by bytes and idle time, history checks;
- ``bundle``: a model bundle on disk -> engine and fallbacks (item-to-item, popular); ``check_servable``;
- ``registry.ModelRegistry``: site -> ``LiveModel`` (engine, states, fallbacks), swapped atomically, bad bundles
  refused, synchronised with the store's live models;
- ``batching.ScoreBatcher``: top-k requests of several threads scored together in one pass over the item matrix;
- ``item_metadata.CatalogCache``: catalogue metadata in memory, for answers and filters;
- ``recommender.recommend``: one placement's answer (algorithm, filters, fallback chain).

Nothing here imports torch: serving runs on plain arrays.
"""
