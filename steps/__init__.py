"""One small factory per SageMaker pipeline step: (config, parameters, upstream steps) -> step. No I/O."""
