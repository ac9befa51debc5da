"""Deploying an approved model package (the deploy-on-approval Lambda's logic)."""
