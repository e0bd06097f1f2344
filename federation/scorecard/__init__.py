"""Credit products: scorecard scaling and grades, LR scorecards, reason codes, batch scoring.

May import ``federation.ml``, ``federation.data``, ``federation.run`` and ``federation.errors``;
no flwr.
"""
