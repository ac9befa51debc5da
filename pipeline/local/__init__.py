"""The local runtime: executes the SageMaker pipeline definition JSON on this machine, with no AWS and no Docker."""
