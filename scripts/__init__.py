"""Code that runs inside SageMaker jobs and Lambdas; self-contained, imports nothing from pipeline/ or steps/."""
