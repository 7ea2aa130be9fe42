"""The model lifecycle: log validation, the model registry, and `retrain` (validate → train → gate → promote)."""
