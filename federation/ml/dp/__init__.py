"""Record-level differential privacy for a bank's training and releases (``dp-epsilon > 0``).

* :mod:`~federation.ml.dp.accountant`: epsilon of a composition of (subsampled) Gaussian
  mechanisms, by Opacus' RDP accountant, cross-checked with Google's ``dp-accounting``;
* :mod:`~federation.ml.dp.budget`: a bank's plan (noise of DP-SGD, of the statistics and of the
  score histograms) from the run's (epsilon, delta) and its row counts;
* :mod:`~federation.ml.dp.sgd`: DP-SGD with Opacus (Poisson sampling, per-sample clipping,
  Gaussian noise);
* :mod:`~federation.ml.dp.releases`: the noised score histograms and preprocessing statistics;
* :mod:`~federation.ml.dp.trees` and :mod:`~federation.ml.dp.tree_releases`: a boosted-tree
  run's plan (levels x trees of noised gradient/hessian histograms) and noised releases.

Guarantee: per bank and per borrower (add or remove one row), (epsilon, delta)-DP for
everything the bank sends in a horizontal LR/MLP/boosted-tree run except its row counts and the schema's
column and category names (docs/security.md). Encryption (Paillier) hides each bank's
contribution from the coordinator; DP bounds what the released sums and model reveal.
May import numpy, torch, opacus, dp-accounting and the other ``federation.ml`` modules; the
package itself imports nothing heavy (``sgd`` imports torch and Opacus).
"""
