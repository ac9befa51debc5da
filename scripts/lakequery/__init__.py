"""Query access to Security Lake: the SQL that reads a window of a table, and running it on Athena."""
