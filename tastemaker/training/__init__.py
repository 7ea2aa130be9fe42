"""Offline jobs over the logs: export and readers, off-policy estimators and reports, reward-model,
policy and sticker-encoder training, and the model lifecycle (validation, registry, retrain, gate)."""
