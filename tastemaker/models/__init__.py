"""Model artifacts on disk: reward-model manifests and loading (`artifacts`), the registry's
read side (`registry`). Serving and training both read through here; only training writes versions."""
