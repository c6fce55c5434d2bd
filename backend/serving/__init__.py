"""Serving: a GRU4Rec artifact answered on the CPU, per-session state in memory, the live model of each site.

- ``engine.GRU4RecEngine``: loads an artifact (read-only memory maps) and runs the Numba kernels;
- ``state.SessionStateCache``: session id -> hidden state, bounded by bytes and idle time, history checks;
- ``registry.ModelRegistry``: site -> ``LiveModel`` (engine + states), swapped atomically, bad artifacts refused;
- ``batcher.TopKBatcher``: asyncio front of ``engine.top_k`` that scores requests arriving together in one pass.

Nothing here imports torch: serving runs on plain arrays.
"""
