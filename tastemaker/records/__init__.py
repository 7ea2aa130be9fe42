"""The decision log, in one package: its layouts (`layout`: written out and packed), its signed ids
(`ids`), deferred activation (`activation`), the feature vector it carries (`feature_vector`) and
its files and topic (`log_files`: exports in JSON lines or Parquet, the rewarded topic).

Serving writes decision logs through it; the joiner, the learner and every offline job read them
through it. It knows Kafka only through the port (`tastemaker.messaging`)."""
