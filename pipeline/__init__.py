"""The seclake-ipinsights pipeline: configuration, the SageMaker definition, the CLI and the local runtime."""
