"""Models and learning: preprocessing, torch models, training, metrics, binning, FedAvg maths.

scikit-learn conventions (settings in ``__init__``, ``fit`` returns self, learned state ends in
``_``); metrics are plain functions on arrays. May import ``federation.data``,
``federation.run``, ``federation.errors``, ``protocols`` and numpy/pandas/torch; no flwr.
"""
