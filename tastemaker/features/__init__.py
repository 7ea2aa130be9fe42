"""Event parsing, feature definitions, the Kafka→Redis stream processor, the online feature
store and the reward joiner. This package owns every Redis key."""
