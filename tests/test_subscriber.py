"""Reading another account's lake as its Security Lake subscriber: the exact AssumeRole request, a session assumed
again before it runs out (a long Spark job, a warm Lambda), S3A's per-bucket credentials, the monitor reading lake
objects as the subscriber role and everything else as its own, and the policies each side gets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.config import ConfigError, load_config
from pipeline.iam import PIPELINE_ROLE_POLICY, render_policies
from pipeline.local.identity import AccessDeniedError, Principal
from scripts.assumed_role import CHAINED_SESSION_SECONDS, RoleSession, RoleToAssume
from scripts.monitor.resources import AssumedRoleObjects, aws_resources
from scripts.monitor.settings import Settings
from scripts.prepare.lake_credentials import (
    TEMPORARY_CREDENTIALS,
    LakeCredentials,
    s3_buckets,
    s3a_settings,
    sts_region,
    through_s3a,
)
from scripts.prepare.request_log import REQUESTS
from tests.cfn import load_template, role_statements

ROLE = "arn:aws:iam::210987654321:role/AmazonSecurityLake-0f3c"
EXTERNAL_ID = "our-external-id"
START = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
LOCAL_SUBSCRIBER = "arn:aws:iam::210987654321:role/AmazonSecurityLake-seclake-ipinsights"  # config/local.yaml's


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def _answer(key: str, expires: dt.datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": f"secret-of-{key}",
            "SessionToken": f"token-of-{key}",
            "Expiration": expires,
        }
    }


def _stubbed_sts(*keys_and_expiries: tuple[str, dt.datetime], session_name: str) -> tuple[Any, Stubber]:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(sts)
    expected = {
        "RoleArn": ROLE,
        "RoleSessionName": session_name,
        "DurationSeconds": CHAINED_SESSION_SECONDS,
        "ExternalId": EXTERNAL_ID,
    }
    for key, expires in keys_and_expiries:
        stubber.add_response("assume_role", _answer(key, expires), expected)
    stubber.activate()
    return sts, stubber


def test_a_session_is_assumed_with_the_external_id_and_again_only_when_it_nears_its_end() -> None:
    clock = Clock()
    sts, stubber = _stubbed_sts(
        ("ASIAFIRSTSESSION00", START + dt.timedelta(hours=1)),
        ("ASIASECONDSESSION0", START + dt.timedelta(hours=2)),
        session_name="s1",
    )
    session = RoleSession(sts, RoleToAssume(ROLE, EXTERNAL_ID, "s1"), clock=clock)
    assert session.credentials().access_key_id == "ASIAFIRSTSESSION00"
    clock.now = START + dt.timedelta(minutes=39)  # 21 minutes left: still enough for a scan
    assert session.credentials().access_key_id == "ASIAFIRSTSESSION00"
    clock.now = START + dt.timedelta(minutes=41)  # 19 left: assumed again before the next unit of work
    assert session.credentials().access_key_id == "ASIASECONDSESSION0"
    assert session.assumed == 2
    stubber.assert_no_pending_responses()


def test_s3a_reads_only_the_lake_buckets_with_the_session_and_without_cached_filesystems() -> None:
    assert s3_buckets(["s3://lake-a", "s3a://lake-b/prefix", "s3://lake-a", "file:///tmp/lake"]) == ["lake-a", "lake-b"]
    assert through_s3a(["s3://lake-a", "file:///tmp/lake"]) == ["s3a://lake-a", "file:///tmp/lake"]
    lake = "aws-security-data-lake-eu-west-1-" + "b" * 30
    assert sts_region(["s3a://lake-a", f"s3a://{lake}"]) == "eu-west-1"  # the lake's region, from its bucket
    assert sts_region(["file:///tmp/lake"]) is None  # local: the job's own AWS_REGION
    credentials = RoleSession(
        _stubbed_sts(("ASIAKEYOFTHESESSION", START + dt.timedelta(hours=1)), session_name="ss")[0],
        RoleToAssume(ROLE, EXTERNAL_ID, "ss"),
    ).credentials()
    assert s3a_settings(["lake-a"], credentials) == {
        "fs.s3.impl.disable.cache": "true",
        "fs.s3a.impl.disable.cache": "true",
        "fs.s3a.bucket.lake-a.aws.credentials.provider": TEMPORARY_CREDENTIALS,
        "fs.s3a.bucket.lake-a.access.key": "ASIAKEYOFTHESESSION",
        "fs.s3a.bucket.lake-a.secret.key": "secret-of-ASIAKEYOFTHESESSION",
        "fs.s3a.bucket.lake-a.session.token": "token-of-ASIAKEYOFTHESESSION",
    }


@pytest.mark.spark
def test_the_spark_driver_hands_a_refreshed_session_to_s3a_and_signs_its_lake_requests_with_it(spark: Any) -> None:
    clock = Clock()
    sts, stubber = _stubbed_sts(
        ("ASIAFIRSTSESSION00", START + dt.timedelta(hours=1)),
        ("ASIASECONDSESSION0", START + dt.timedelta(hours=2)),
        session_name="seclake-ipinsights-prepare",
    )
    session = RoleSession(sts, RoleToAssume(ROLE, EXTERNAL_ID, "seclake-ipinsights-prepare"), clock=clock)
    lake = LakeCredentials(session, ["s3://aws-security-data-lake-us-east-1-abc"])
    configuration = spark.sparkContext._jsc.hadoopConfiguration()
    key = "fs.s3a.bucket.aws-security-data-lake-us-east-1-abc.access.key"
    try:
        lake.refresh(spark)
        assert configuration.get(key) == "ASIAFIRSTSESSION00" and REQUESTS.key == "ASIAFIRSTSESSION00"
        clock.now = START + dt.timedelta(minutes=50)
        lake.refresh(spark)
        assert configuration.get(key) == "ASIASECONDSESSION0" and REQUESTS.key == "ASIASECONDSESSION0"
        assert configuration.get("fs.s3a.impl.disable.cache") == "true"
    finally:
        REQUESTS.signed_by("")
        for name in s3a_settings(lake.buckets, session.credentials()):
            configuration.unset(name)
    stubber.assert_no_pending_responses()


class RecordingS3:
    def __init__(self, **keys: str) -> None:
        self.keys = keys


def test_a_warm_monitor_reads_the_lake_with_a_session_it_renews_and_its_artifacts_as_itself() -> None:
    clock = Clock()
    sts, _ = _stubbed_sts(
        ("ASIAFIRSTSESSION00", START + dt.timedelta(hours=1)),
        ("ASIASECONDSESSION0", START + dt.timedelta(hours=2)),
        session_name="seclake-ipinsights-monitor-lake",
    )
    session = RoleSession(sts, RoleToAssume(ROLE, EXTERNAL_ID, "seclake-ipinsights-monitor-lake"), clock=clock)
    lake = AssumedRoleObjects(session, RecordingS3)
    first = lake.client
    assert first.keys["aws_access_key_id"] == "ASIAFIRSTSESSION00" and lake.client is first
    clock.now = START + dt.timedelta(hours=3)  # the container stayed warm: yesterday's session is gone
    assert lake.client.keys == {
        "aws_access_key_id": "ASIASECONDSESSION0",
        "aws_secret_access_key": "secret-of-ASIASECONDSESSION0",
        "aws_session_token": "token-of-ASIASECONDSESSION0",
    }


def test_the_monitor_reads_the_lake_as_the_subscriber_role_only_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    environ = {"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://artifacts/p", "LAKE_ROLE_ARN": ROLE, "LAKE_EXTERNAL_ID": "x"}
    settings = Settings.from_environment(environ)
    assert (settings.lake_role_arn, settings.lake_external_id) == (ROLE, "x")
    resources = aws_resources(settings)
    assert isinstance(resources.lake, AssumedRoleObjects) and resources.lake is not resources.objects
    assert resources.lake.session.role == RoleToAssume(ROLE, "x", "seclake-ipinsights-monitor-lake")
    own = aws_resources(Settings.from_environment({"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://artifacts/p"}))
    assert own.lake is own.objects


def test_the_monitor_template_grants_the_assumption_instead_of_the_lake_when_it_reads_as_a_subscriber() -> None:
    template = load_template()
    raw = template["Resources"]["MonitorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = {s["Fn::If"][1]["Sid"]: s["Fn::If"][0] for s in raw if "Fn::If" in s}
    assert conditional["ReadLakeSources"] == "ReadsOwnLake"
    assert conditional["ReadLakeAsItsSubscriber"] == "ReadsAsSubscriber"
    assume = next(s for s in role_statements(template) if s["Sid"] == "ReadLakeAsItsSubscriber")
    assert assume["Action"] == "sts:AssumeRole" and assume["Resource"] == "!Ref LakeSubscriberRoleArn"
    variables = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LAKE_ROLE_ARN"] == "!Ref LakeSubscriberRoleArn"
    assert variables["LAKE_EXTERNAL_ID"] == "!Ref LakeSubscriberExternalId"


def test_seclake_iam_grants_the_subscriber_role_instead_of_the_lake_and_the_shared_tables() -> None:
    environ = {
        "SECLAKE_LAKE__SUBSCRIBER__ROLE_ARN": ROLE,
        "SECLAKE_LAKE__SUBSCRIBER__EXTERNAL_ID": EXTERNAL_ID,
        "SECLAKE_AWS__LAKE_ROOTS": "s3://aws-security-data-lake-us-east-1-abc",
    }
    subscriber = render_policies(load_config("prod", environ=environ))[PIPELINE_ROLE_POLICY]
    by_sid = {s["Sid"]: s for s in subscriber["Statement"]}
    assert by_sid["AssumeTheLakeSubscriberRole"]["Resource"] == [ROLE]
    assert "ReadSecurityLakeSources" not in by_sid and "ListSecurityLakeSources" not in by_sid
    assert by_sid["ReadSharedSecurityLakeTables"]["Resource"] == [
        "arn:aws:glue:us-east-1:210987654321:catalog",
        "arn:aws:glue:us-east-1:210987654321:database/amazon_security_lake_glue_db_us_east_1",
        "arn:aws:glue:us-east-1:210987654321:table/amazon_security_lake_glue_db_us_east_1/*",
    ]
    own = render_policies(load_config("prod", environ={"SECLAKE_AWS__LAKE_ROOTS": environ["SECLAKE_AWS__LAKE_ROOTS"]}))
    own_sids = {s["Sid"] for s in own[PIPELINE_ROLE_POLICY]["Statement"]}
    assert {"ReadSecurityLakeSources", "ListSecurityLakeSources"} <= own_sids
    assert not own_sids & {"AssumeTheLakeSubscriberRole", "ReadSharedSecurityLakeTables"}


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"SECLAKE_LAKE__SUBSCRIBER__ROLE_ARN": ROLE}, "external_id is ''"),
        (
            {
                "SECLAKE_LAKE__SUBSCRIBER__ROLE_ARN": ROLE,
                "SECLAKE_LAKE__SUBSCRIBER__EXTERNAL_ID": EXTERNAL_ID,
                "SECLAKE_LAKE__SUBSCRIBER__QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:q",
            },
            "is in account 123456789012, the role in 210987654321",
        ),
    ],
)
def test_an_incomplete_subscriber_is_refused_with_what_to_set(variables: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config("prod", environ=variables)


LAKE = "aws-security-data-lake-us-east-1-" + "a" * 30
OBJECT = "aws/VPC_FLOW/2.0/region=us-east-1/accountId=111122223333/eventDay=20261205/part-0.parquet"
FINDING = "ext/seclake-ipinsights/region=us-east-1/accountId=111122223333/eventDay=20261205/findings.parquet"


def _replay_resources(home: Path, drop: str = "") -> tuple[Any, Any]:
    """The local replay's resources under the local profile's two accounts (`drop`: a statement left out of the
    function's role)."""
    from pipeline.local.monitor_identity import checked_resources, monitor_identity
    from pipeline.local.security_lake import provider_role_arn
    from scripts.monitor.resources import folder_resources

    config = load_config(environ={"SECLAKE_HOME": str(home)})
    (home / "s3" / LAKE / OBJECT).parent.mkdir(parents=True)
    (home / "s3" / LAKE / OBJECT).write_bytes(b"PAR1")
    provider = provider_role_arn(config)
    identity = monitor_identity(config, [LAKE], LAKE, provider)
    if drop:
        function = identity.principals[identity.pipeline_role]
        [policy] = function.policies
        reduced = {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != drop]}
        identity.principals[identity.pipeline_role] = Principal(
            function.role_arn, [reduced], function.account, function.region
        )
    settings = Settings(
        endpoint=config.pipeline.endpoint_name,
        artifact_uri=config.aws.artifact_uri,
        findings_role_arn=provider,
        findings_external_id=config.findings.external_id,
    )
    resources = folder_resources(settings, home / "s3", "http://127.0.0.1:9", lambda: "config")
    return checked_resources(resources, identity, config), identity


def test_local_replay_reads_the_lake_as_the_subscriber_and_writes_findings_as_the_provider(tmp_path: Path) -> None:
    """The function's role (the monitor template's, rendered) cannot read the other account's lake itself; the
    subscriber role it assumes can; findings go under ext/<source>/ as the provider role, and nowhere else."""
    resources, identity = _replay_resources(tmp_path)
    assert resources.lake.download(LAKE, OBJECT).read_bytes() == b"PAR1"
    with pytest.raises(
        AccessDeniedError, match="assumed-role/MonitorRole/MonitorFunction is not authorized to perform: s3:GetObject"
    ):
        resources.objects.download(LAKE, OBJECT)
    writer = resources.findings_store()
    writer.put(LAKE, FINDING, b"finding")
    with pytest.raises(
        AccessDeniedError, match="AmazonSecurityLake-Provider-seclake-ipinsights-us-east-1/SageMaker is not authorized"
    ):
        writer.put(LAKE, OBJECT, b"overwrite the lake")
    made = {(r.principal.rsplit("/", 1)[-1], r.request.action) for r in identity.trace}
    assert ("MonitorRole", "sts:AssumeRole") in made
    assert ("AmazonSecurityLake-seclake-ipinsights", "s3:GetObject") in made
    assert ("AmazonSecurityLake-Provider-seclake-ipinsights-us-east-1", "s3:PutObject") in made


@pytest.mark.parametrize(
    ("statement", "refused"),
    [("ReadLakeAsItsSubscriber", "lake"), ("WriteFindingsAsTheCustomSourcesProvider", "findings")],
)
def test_the_monitor_template_without_an_assumption_statement_is_refused_locally(
    tmp_path: Path, statement: str, refused: str
) -> None:
    if refused == "lake":
        with pytest.raises(AccessDeniedError, match=f"sts:AssumeRole on resource: {LOCAL_SUBSCRIBER}"):
            _replay_resources(tmp_path, drop=statement)
        return
    resources, _ = _replay_resources(tmp_path, drop=statement)
    with pytest.raises(AccessDeniedError, match=r"sts:AssumeRole on resource: .*AmazonSecurityLake-Provider-"):
        resources.findings_store()


def test_the_spark_step_is_told_the_subscriber_role_and_external_id_only_when_there_is_one() -> None:
    import json

    from pipeline.definition import definition_json
    from steps import names

    def prepare_arguments(environ: dict[str, str]) -> list[str]:
        definition = json.loads(definition_json(load_config("prod", environ=environ)))
        step = next(s for s in definition["Steps"] if s["Name"] == names.PREPARE)
        return list(step["Arguments"]["AppSpecification"]["ContainerArguments"])

    subscribed = prepare_arguments(
        {"SECLAKE_LAKE__SUBSCRIBER__ROLE_ARN": ROLE, "SECLAKE_LAKE__SUBSCRIBER__EXTERNAL_ID": EXTERNAL_ID}
    )
    assert subscribed[-4:] == ["--lake-role-arn", ROLE, "--lake-external-id", EXTERNAL_ID]
    assert "--lake-role-arn" not in prepare_arguments({})


def test_the_local_sts_answers_boto3_as_iam_decides(tmp_path: Path) -> None:
    """A job's boto3, signed with its role's key, gets a session of the subscriber role whose key the runtime maps
    back to that role; the wrong external id is AWS's AccessDenied, kept for the step."""
    from botocore.exceptions import ClientError

    from pipeline.local.run_definition import account_identity
    from pipeline.local.sts import local_sts

    config = load_config(environ={"SECLAKE_HOME": str(tmp_path)})
    identity = account_identity(config, f"s3://{LAKE}")
    with local_sts(identity, "PrepareSecurityLakeData") as (endpoint, sts):
        client = boto3.client(
            "sts",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=sts.caller_key(identity.pipeline_role),
            aws_secret_access_key="local",
        )
        role = RoleToAssume(LOCAL_SUBSCRIBER, config.lake.subscriber.external_id, "seclake-ipinsights-prepare")
        answer = client.assume_role(**role.request())
        assert identity.role_of(answer["Credentials"]["AccessKeyId"], "x") == LOCAL_SUBSCRIBER
        assert answer["AssumedRoleUser"]["Arn"].endswith(
            "AmazonSecurityLake-seclake-ipinsights/seclake-ipinsights-prepare"
        )
        with pytest.raises(ClientError, match="AccessDenied"):
            client.assume_role(**RoleToAssume(LOCAL_SUBSCRIBER, "guessed", "seclake-ipinsights-prepare").request())
    assert len(sts.refusals) == 1 and "with external id 'guessed'" in sts.refusals[0]


@pytest.mark.parametrize(
    ("statement", "action"),
    [
        ("ReadThisGroupsPackages", "sagemaker:DescribeModelPackage"),
        ("DeployThisEndpoint", "sagemaker:DescribeEndpoint"),
    ],
)
def test_approving_locally_is_refused_without_the_deploy_on_approval_roles_statement(
    tmp_path: Path, statement: str, action: str
) -> None:
    """`seclake models approve` calls SageMaker as the template's DeployOnApprovalRole, rendered for this config."""
    from botocore.exceptions import ClientError

    from pipeline.local.approval import LocalSageMaker
    from pipeline.local.monitor_identity import deployer_identity

    config = load_config(environ={"SECLAKE_HOME": str(tmp_path)})
    identity, deployer = deployer_identity(config, f"s3://{LAKE}")
    package = "arn:aws:sagemaker:local:000000000000:model-package/seclake-ipinsights/1"
    sagemaker = LocalSageMaker(tmp_path, config.pipeline.endpoint_name, identity, deployer)
    with pytest.raises(ClientError, match="does not exist"):  # allowed, and answered as SageMaker would
        sagemaker.describe_model_package(ModelPackageName=package)
    principal = identity.principals[deployer]
    [policy] = principal.policies
    reduced = {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != statement]}
    identity.principals[deployer] = dataclasses.replace(principal, policies=[reduced])
    refused = f"DeployOnApprovalRole/DeployOnApprovalFunction is not authorized to perform: {action}"
    with pytest.raises(AccessDeniedError, match=refused):
        if action == "sagemaker:DescribeModelPackage":
            sagemaker.describe_model_package(ModelPackageName=package)
        else:
            sagemaker.describe_endpoint(EndpointName=config.pipeline.endpoint_name)
