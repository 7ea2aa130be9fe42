"""Tastemaker: real-time recommendations with contextual bandits, propensity logs and off-policy evaluation."""

__version__ = "0.1.0"
