"""The preprocessing job's library (scripts/jobs/preprocess.py runs it): lake objects, the eval set, outputs."""
