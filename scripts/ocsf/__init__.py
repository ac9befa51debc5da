"""Amazon Security Lake OCSF knowledge shared by every job: table schemas and the bucket layout."""
