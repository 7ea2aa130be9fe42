"""Everything that reads or writes Redis and consumes Kafka for features and learning: event
parsing, feature definitions, the Kafka→Redis stream processor, the online feature store, the
reward joiner, the online learner and the linear posterior store. This package owns every Redis
key (`keys.py`) and every topic name (`topics.py`)."""
