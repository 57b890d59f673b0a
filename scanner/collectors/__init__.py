"""Collectors: one module per source, each ``get_*`` (I/O) -> ``transform_*`` (pure) -> records.

A collector's public entry point is ``collect(source, config, *, hmac_key, progress=None)``
returning a :class:`scanner.records.CollectResult` with its records and the coverage of every
inventory it tried to read.
"""
