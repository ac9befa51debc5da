"""Job entry points: each a thin main(argv) run by a SageMaker job from its uploaded file, with the scripts bundle."""
