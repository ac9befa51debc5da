"""The files steps hand each other, each named once with its format, place and keys; writers and readers import it.

artifacts.py   where each file lies: the run layout under s3://<artifacts>/, the container paths, the endpoint
               config's name
evalset.py     the eval set: pairs.csv, labels.csv (its columns and kinds), the transform's scores; the loader
quality.py     quality.json: what the preprocessing step made (the window, the pair mapping, counts, drops)
detection.py   detection.json: what the detector delivers on the held-out day
evaluation.py  evaluation.json: the model-quality report (SageMaker's format) and the JSON paths the gate reads
manifest.py    manifest.json: what the monitor needs to score as the run did (threshold, detector, pair rules)
"""
