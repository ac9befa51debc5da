"""Continuous monitoring: score new Security Lake objects as they land and write OCSF Detection Findings."""
