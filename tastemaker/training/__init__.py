"""Offline jobs over the logs: export, off-policy estimators and reports (retraining later)."""
