"""Package data: the public credit data sets shipped with fedcredit, gzip-compressed.

Read them through :mod:`federation.data.embedded` (names ``uci`` and ``german``); their
sources and licence (CC BY 4.0) are in ``README.md`` beside these files.
Holds no code; may import nothing.
"""
