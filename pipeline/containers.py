"""Each job's container: image, pinned tag, Python and the packages the job imports, from the image's build files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobContainer:
    """Where one job runs on AWS, and what the job's code may rely on there.

    `packages` are the exact versions the image ships of what the job imports (directly or through `scripts/`);
    `local_packages` are what the local runtime adds to stand in for the image's non-pip parts (EMR's Spark). The
    local runtime and CI run the job in a virtual environment of exactly `python` with exactly these, so a job that
    imports something the image lacks, or uses syntax its Python lacks, fails here as it would there.
    """

    name: str
    repository: str
    framework_version: str
    tag: str
    python: str
    packages: dict[str, str]
    sources: tuple[str, ...]
    local_packages: dict[str, str]
    py_version: str | None = None
    container_version: str | None = None
    sdk_framework: str | None = None

    def image_uri(self, region: str) -> str:
        """The image in `region`, from the SDK's bundled table (no AWS call), checked against the pinned tag."""
        from sagemaker.core import image_uris

        if self.sdk_framework is None:
            message = f"{self.name} is not a SageMaker image"
            raise ValueError(message)
        uri = str(
            image_uris.retrieve(
                self.sdk_framework,
                region,
                version=self.framework_version,
                py_version=self.py_version,
                container_version=self.container_version,
                image_scope="processing" if self.sdk_framework == "spark" else None,
            )
        )
        if not uri.endswith(f"/{self.repository}:{self.tag}"):
            message = f"the SDK resolves {self.name} to {uri}, not the pinned {self.repository}:{self.tag}"
            raise ValueError(message)
        return uri

    def requirements(self) -> list[str]:
        """pip requirement lines for the stand-in environment, sorted."""
        merged = {**self.packages, **self.local_packages}
        return [f"{name}=={version}" for name, version in sorted(merged.items())]


SPARK_PROCESSING = JobContainer(
    name="spark-processing",
    repository="sagemaker-spark-processing",
    framework_version="3.5",
    py_version="py312",
    container_version="v1.3",
    tag="3.5-cpu-py312-v1.3",
    sdk_framework="spark",
    python="3.12",
    packages={"numpy": "1.26.4", "pandas": "3.0.1", "boto3": "1.42.38"},
    sources=(
        "aws/sagemaker-spark-container spark/processing/3.5/py3/docker/py312/Dockerfile.cpu: python3.12 from dnf, "
        "Spark and Hadoop from EMR's repository (fs.defaultFS is HDFS: hadoop-config/core-site.xml)",
        "aws/sagemaker-spark-container smsparkbuild/py312/Pipfile.runtime.lock (commit 6d346db): numpy 1.26.4, "
        "pandas 3.0.1, boto3 1.42.38 (botocore 1.42.68); no pyarrow, no fastparquet, no scikit-learn",
        "v1.3 is the first py312 build whose python3 is 3.12 (its release note: earlier py312 images ran 3.9)",
    ),
    # EMR's spark-python in the image is Spark 3.5; pyspark 3.5.9 from PyPI is the local stand-in.
    local_packages={"pyspark": "3.5.9"},
)

SKLEARN_PROCESSING = JobContainer(
    name="sklearn-processing",
    repository="sagemaker-scikit-learn",
    framework_version="1.4-2-py312",
    tag="1.4-2-py312-cpu-py3",
    sdk_framework="sklearn",
    python="3.12",
    packages={"numpy": "2.1.0", "scikit-learn": "1.4.2", "pyarrow": "17.0.0"},
    sources=(
        "aws/sagemaker-scikit-learn-container docker/1.4-2-py312/base/Dockerfile.cpu (commit 0f3a0dc): python3.12, "
        "`uv pip install numpy==2.1.0 scikit-learn==1.4.2 pyarrow==17.0.0`",
        "docker/1.4-2-py312/final/Dockerfile.cpu adds requirements.txt (serving and training toolkits); the job "
        "imports nothing from it, so its unpinned contents (pandas, matplotlib: not promised) are not relied on",
    ),
    local_packages={},
)

# The monitoring Lambda: the python3.11 runtime (boto3 included) with the AWS SDK for pandas layer.
LAMBDA_MONITOR = JobContainer(
    name="lambda-monitor",
    repository="lambda:python3.11",
    framework_version="python3.11",
    tag="python3.11",
    python="3.11",
    packages={
        "awswrangler": "3.17.1",
        "pyarrow": "24.0.0",
        "pandas": "3.0.1",
        "numpy": "2.2.6",
        "boto3": "1.42.68",
        "botocore": "1.42.68",
    },
    sources=(
        "config/cloudformation/monitor.yaml: Runtime python3.11 and the AWS SDK for pandas layer (PandasLayerArn)",
        "aws/aws-sdk-pandas release 3.17.1 (commit 033ad7d5, 2026-07-15) building/lambda/build-lambda-layer.sh: "
        "ARROW_VERSION=24.0.0, pyarrow built from that tag and copied into the layer; boto3, botocore, s3transfer "
        "and urllib3 removed from the layer (the runtime's are used)",
        "the same release's uv.lock for Python 3.11: pandas 3.0.1, numpy 2.2.6, boto3 and botocore 1.42.68 (the "
        "layer's pip resolves numpy and pandas when it is built and AWS publishes no list; the runtime's boto3 is "
        "updated by AWS over time: these are the nearest published record)",
    ),
    local_packages={},
)

CONTAINERS = {c.name: c for c in (SPARK_PROCESSING, SKLEARN_PROCESSING, LAMBDA_MONITOR)}


def container_for_image(image_uri: str) -> JobContainer | None:
    """The declared container an image URI runs, by repository and tag; None when the image is not one of ours."""
    repository_and_tag = image_uri.rsplit("/", 1)[-1]
    for container in CONTAINERS.values():
        if repository_and_tag == f"{container.repository}:{container.tag}":
            return container
    return None
