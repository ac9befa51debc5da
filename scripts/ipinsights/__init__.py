"""An open re-implementation of SageMaker's IP Insights: same hyperparameters, data formats, metric and endpoint API."""
