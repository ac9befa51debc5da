"""The Security Lake table schemas (VPC flow, Route 53; source versions 1 and 2) as code, for Arrow and Spark."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from scripts.ocsf.ddl import Array, DataType, Map, Primitive, Struct, parse_columns

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import types as spark_types

# Column DDL exactly as the Glue tables declare it (shared/reference/security-lake/schemas).
# Version 1 was read from real files; version 2 from published Glue table listings.
_VPC_FLOW_1_0_DDL = (
    "metadata:struct<product:struct<version:string,name:string,feature:struct<name:string>,"
    "vendor_name:string>,profiles:array<string>,version:string>,cloud:struct<account_uid:string,"
    "region:string,zone:string,provider:string>,src_endpoint:struct<port:int,svc_name:string,ip:string,"
    "intermediate_ips:array<string>,interface_uid:string,vpc_uid:string,instance_uid:string,"
    "subnet_uid:string>,dst_endpoint:struct<port:int,svc_name:string,ip:string,"
    "intermediate_ips:array<string>,interface_uid:string,vpc_uid:string,instance_uid:string,"
    "subnet_uid:string>,connection_info:struct<protocol_num:int,tcp_flags:int,protocol_ver:string,"
    "boundary_id:int,boundary:string,direction_id:int,direction:string>,traffic:struct<packets:bigint,"
    "bytes:bigint>,time:bigint,start_time:bigint,end_time:bigint,status_code:string,severity_id:int,"
    "severity:string,class_name:string,class_uid:int,category_name:string,category_uid:int,"
    "activity_name:string,activity_id:int,disposition:string,disposition_id:int,type_uid:int,"
    "type_name:string,unmapped:map<string,string>"
)
_VPC_FLOW_2_0_DDL = (
    "metadata:struct<product:struct<version:string,name:string,feature:struct<name:string>,"
    "vendor_name:string>,profiles:array<string>,version:string>,cloud:struct<account:struct<uid:string>,"
    "region:string,zone:string,provider:string>,src_endpoint:struct<port:int,svc_name:string,ip:string,"
    "intermediate_ips:array<string>,interface_uid:string,vpc_uid:string,instance_uid:string,"
    "subnet_uid:string>,dst_endpoint:struct<port:int,svc_name:string,ip:string,"
    "intermediate_ips:array<string>,interface_uid:string,vpc_uid:string,instance_uid:string,"
    "subnet_uid:string>,connection_info:struct<protocol_num:int,tcp_flags:int,protocol_ver:string,"
    "boundary_id:int,boundary:string,direction_id:int,direction:string>,traffic:struct<packets:bigint,"
    "bytes:bigint>,time:bigint,time_dt:timestamp,start_time_dt:timestamp,end_time_dt:timestamp,"
    "status_code:string,severity_id:int,severity:string,class_name:string,class_uid:int,"
    "category_name:string,category_uid:int,activity_name:string,activity_id:int,action:string,"
    "action_id:int,disposition:string,type_uid:bigint,type_name:string,accountid:string,region:string,"
    "asl_version:string,unmapped:map<string,string>,observables:array<struct<name:string,value:string,"
    "type:string,type_id:int>>"
)
_ROUTE53_1_0_DDL = (
    "metadata:struct<product:struct<version:string,name:string,feature:struct<name:string>,"
    "vendor_name:string>,profiles:array<string>,version:string>,cloud:struct<account_uid:string,"
    "region:string,provider:string>,src_endpoint:struct<vpc_uid:string,ip:string,port:int,"
    "instance_uid:string>,time:bigint,query:struct<hostname:string,type:string,class:string>,"
    "answers:array<struct<type:string,rdata:string,class:string>>,"
    "connection_info:struct<protocol_name:string,direction:string,direction_id:int>,"
    "dst_endpoint:struct<instance_uid:string,interface_uid:string>,severity_id:int,severity:string,"
    "class_name:string,class_uid:int,category_name:string,category_uid:int,rcode_id:int,rcode:string,"
    "activity_id:int,activity_name:string,type_name:string,type_uid:int,disposition:string,"
    "disposition_id:int,unmapped:map<string,string>"
)
_ROUTE53_2_0_DDL = (
    "metadata:struct<product:struct<version:string,name:string,feature:struct<name:string>,"
    "vendor_name:string>,profiles:array<string>,version:string>,cloud:struct<account:struct<uid:string>,"
    "region:string,provider:string>,src_endpoint:struct<vpc_uid:string,ip:string,port:int,"
    "instance_uid:string>,time:bigint,time_dt:timestamp,query:struct<hostname:string,type:string,"
    "class:string>,answers:array<struct<type:string,rdata:string,class:string>>,"
    "connection_info:struct<protocol_name:string,direction:string,direction_id:int>,"
    "dst_endpoint:struct<instance_uid:string,interface_uid:string>,firewall_rule:struct<uid:string>,"
    "severity_id:int,severity:string,class_name:string,class_uid:int,category_name:string,"
    "category_uid:int,activity_id:int,activity_name:string,type_uid:bigint,type_name:string,rcode_id:int,"
    "rcode:string,disposition:string,action:string,action_id:int,unmapped:map<string,string>,"
    "accountid:string,region:string,asl_version:string,observables:array<struct<name:string,value:string,"
    "type:string,type_id:int>>"
)


class Source(StrEnum):
    """A native Security Lake source this project reads; the value is the folder name in the bucket."""

    VPC_FLOW = "VPC_FLOW"
    ROUTE53 = "ROUTE53"

    @property
    def table_suffix(self) -> str:
        return self.value.lower()


@dataclass(frozen=True)
class SourceVersion:
    """A Security Lake source version: its folder name and the OCSF version its rows follow."""

    number: int
    folder: str
    ocsf_version: str


SOURCE_VERSIONS = {
    1: SourceVersion(1, "1.0", "1.0.0-rc.2"),
    2: SourceVersion(2, "2.0", "1.1.0"),
}

_DDL = {
    (Source.VPC_FLOW, 1): _VPC_FLOW_1_0_DDL,
    (Source.VPC_FLOW, 2): _VPC_FLOW_2_0_DDL,
    (Source.ROUTE53, 1): _ROUTE53_1_0_DDL,
    (Source.ROUTE53, 2): _ROUTE53_2_0_DDL,
}


def source_version(number: int) -> SourceVersion:
    """The SourceVersion for 1 or 2, or an error naming the allowed values."""
    if number not in SOURCE_VERSIONS:
        message = f"unknown Security Lake source version {number!r}; allowed: {sorted(SOURCE_VERSIONS)}"
        raise ValueError(message)
    return SOURCE_VERSIONS[number]


@cache
def table_type(source: Source, version: int) -> Struct:
    """The engine-neutral row type of one Security Lake table."""
    source_version(version)
    return parse_columns(_DDL[(source, version)])


# --- Arrow -------------------------------------------------------------------------------------


def _arrow_type(data_type: DataType) -> pa.DataType:
    import pyarrow as pa

    if isinstance(data_type, Primitive):
        primitives = {
            "string": pa.string(),
            "int": pa.int32(),
            "bigint": pa.int64(),
            "timestamp": pa.timestamp("ms", tz="UTC"),
        }
        return primitives[data_type.name]
    if isinstance(data_type, Array):
        return pa.list_(_arrow_type(data_type.element))
    if isinstance(data_type, Map):
        return pa.map_(_arrow_type(data_type.key), _arrow_type(data_type.value))
    return pa.struct([pa.field(f.name, _arrow_type(f.type)) for f in data_type.fields])


@cache
def arrow_schema(source: Source, version: int) -> pa.Schema:
    """The Arrow schema a Security Lake parquet file of this source and version is written with."""
    import pyarrow as pa

    row = table_type(source, version)
    return pa.schema([pa.field(f.name, _arrow_type(f.type)) for f in row.fields])


def _describe(arrow: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_struct(arrow):
        return "struct"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return "array"
    if pa.types.is_map(arrow):
        return "map"
    return str(arrow)


def _type_mismatches(path: str, actual: pa.DataType, expected: DataType) -> list[str]:
    """Differences between a type found in a file and the declared one, ignoring nullability and child names."""
    import pyarrow as pa

    if isinstance(expected, Struct):
        if not pa.types.is_struct(actual):
            return [f"{path}: expected struct, found {_describe(actual)}"]
        found = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        problems = [f"{path}.{name}: unexpected column" for name in found if name not in expected.names()]
        for member in expected.fields:
            if member.name not in found:
                problems.append(f"{path}.{member.name}: missing column")
            else:
                problems.extend(_type_mismatches(f"{path}.{member.name}", found[member.name], member.type))
        return problems
    if isinstance(expected, Array):
        if not (pa.types.is_list(actual) or pa.types.is_large_list(actual)):
            return [f"{path}: expected array, found {_describe(actual)}"]
        return _type_mismatches(f"{path}[]", actual.value_type, expected.element)
    if isinstance(expected, Map):
        if not pa.types.is_map(actual):
            return [f"{path}: expected map, found {_describe(actual)}"]
        return _type_mismatches(f"{path}{{key}}", actual.key_type, expected.key) + _type_mismatches(
            f"{path}{{value}}", actual.item_type, expected.value
        )
    checks = {
        "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "int": pa.types.is_int32,
        "bigint": pa.types.is_int64,
        "timestamp": pa.types.is_timestamp,
    }
    if checks[expected.name](actual):
        return []
    return [f"{path}: expected {expected.name}, found {_describe(actual)}"]


def arrow_mismatches(schema: pa.Schema, source: Source, version: int) -> list[str]:
    """Every column of `schema` that differs from the declared table; empty when the file conforms.

    Nullability, list element names (parquet-mr writes `array`) and map entry names are not compared.
    """
    import pyarrow as pa

    as_struct = pa.struct(list(schema))
    return _type_mismatches("", as_struct, table_type(source, version))


def detect_version(schema: pa.Schema, source: Source) -> int:
    """The source version whose declared schema the file's schema matches, or an error saying what differs."""
    differences = {version: arrow_mismatches(schema, source, version) for version in SOURCE_VERSIONS}
    for version, problems in differences.items():
        if not problems:
            return version
    detail = "; ".join(
        f"version {version}: {len(problems)} differences, first: {', '.join(problems[:3])}"
        for version, problems in differences.items()
    )
    message = (
        f"the schema does not match any known {source.value} source version ({detail}). "
        "Check that the path points at a Security Lake native source, or force the version if the data is a "
        "newer layout this release does not know."
    )
    raise ValueError(message)


# --- Spark -------------------------------------------------------------------------------------


def _spark_type(data_type: DataType) -> spark_types.DataType:
    from pyspark.sql import types as spark_types

    if isinstance(data_type, Primitive):
        primitives: dict[str, Any] = {
            "string": spark_types.StringType(),
            "int": spark_types.IntegerType(),
            "bigint": spark_types.LongType(),
            "timestamp": spark_types.TimestampType(),
        }
        return cast("spark_types.DataType", primitives[data_type.name])
    if isinstance(data_type, Array):
        return spark_types.ArrayType(_spark_type(data_type.element), containsNull=True)
    if isinstance(data_type, Map):
        return spark_types.MapType(_spark_type(data_type.key), _spark_type(data_type.value), valueContainsNull=True)
    return spark_types.StructType(
        [spark_types.StructField(f.name, _spark_type(f.type), nullable=True) for f in data_type.fields]
    )


def spark_schema(source: Source, version: int) -> spark_types.StructType:
    """The Spark StructType of one Security Lake table, as Glue declares it."""
    result = _spark_type(table_type(source, version))
    from pyspark.sql import types as spark_types

    if not isinstance(result, spark_types.StructType):
        message = f"{source.value} version {version} is not a struct of columns"
        raise TypeError(message)
    return result
