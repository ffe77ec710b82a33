"""The learning loop's default numbers, which the project settings and the app's config offer as their defaults.

Stdlib only: ``import assay`` and the project settings (assay.domain.settings) read them without numpy.
"""
from __future__ import annotations

K_SAMPLES = 20  # posterior samples per item for BALD-type strategies (retrain and simulation)
AUDIT_SHARE = 0.05  # learning.queueing draws this share of the queue uniformly, for the accuracy estimate
