"""A generator of realistic Amazon Security Lake data (VPC flow, Route 53) with injected anomalies and labels."""
