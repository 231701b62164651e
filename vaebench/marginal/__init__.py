"""Marginal likelihood log p(x) of a trained model: the estimators (paper appendix D and
importance sampling), their per-run driver (marginal_<method>.csv) and the evaluation of the
three treatments of theta (ml, map, vb; appendix F)."""
