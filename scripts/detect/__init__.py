"""Detection on top of IP Insights: history of each entity, novelty, calibration, and why a pair was flagged."""
