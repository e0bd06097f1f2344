"""A party's own rows: load and validate a credit CSV, split banks, synthetic pairs, USCC.

Nothing here sends a row anywhere. May import ``federation.errors``, ``federation.run.config``,
``federation.ml.preprocess`` and third-party data libraries (numpy, pandas); no flwr.
"""
