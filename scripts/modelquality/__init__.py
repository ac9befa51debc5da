"""The model's evaluation on the eval set: its metrics and calibrated threshold, and the HTML report."""
