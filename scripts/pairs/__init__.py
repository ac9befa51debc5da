"""(entity, ip) pair extraction from Security Lake rows: one declared mapping, a Spark engine and a pyarrow engine."""
