"""The credit query service: online federated scoring at loan time, with a query log.

``fedcredit serve`` runs one process per institution (FastAPI under uvicorn):

* the **credit center** answers a bank's partial-score request from its own feature table
  and its own part of the promoted model (vertical LR: its partial logit, and the reason codes
  it publishes for its own features; SecureBoost: the branch each enterprise takes at each of
  its split nodes, :mod:`federation.run.tree_part`); nothing else about its features leaves it;
* a **bank** answers ``POST /v1/score`` (one applicant) and ``POST /v1/score/batch`` (up to
  10,000): its own part of the model on its own features, plus the center's partial logit, as
  P(default), points, grade, reason codes and the model version. A model promoted whole
  (horizontal) is served by the bank alone.

Every request, refused ones included, is one row of the institution's query log
(:mod:`fedcredit.service.query_log`, SQLAlchemy: SQLite WAL or PostgreSQL). Models come from
the registry (:mod:`fedcredit.service.registry`, ``fedcredit models promote``) and are
reloaded when a new version is promoted. Callers authenticate with per-institution API keys
stored hashed (:mod:`fedcredit.service.auth`; docs/service.md says why not mTLS).

Part of the composition root: may import ``federation`` and ``protocols`` (and FastAPI,
uvicorn, SQLAlchemy, httpx, prometheus-client); never ``clients`` or ``server`` (a service is
not a Flower app).

Security assumption: the bank and the center are honest-but-curious about each other; a bank
learns the center's partial logit of each enterprise it queries (as in vertical-LR inference)
and the center learns which bank asked about which enterprise and why (the query log a credit
bureau keeps anyway). Rate limits and the log bound what repeated queries can extract.
"""
