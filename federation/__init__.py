"""Shared domain of fedcredit: data schema and validation, partitioning, models, metrics, config.

No Flower app wiring lives here; `clients/` and `server/` stay thin around these functions.
"""
