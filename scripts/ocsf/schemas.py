"""The Security Lake table schemas (VPC flow, Route 53; source versions 1 and 2) as code, for Arrow and Spark."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from scripts.ocsf.ddl import Array, DataType, Field, Map, Primitive, Struct, parse_columns

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


# The OCSF class of every row of a source, in both versions: Network Activity and DNS Activity.
CLASS_UIDS = {Source.VPC_FLOW: 4001, Source.ROUTE53: 4003}

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


def _neutral_from_arrow(arrow: pa.DataType) -> DataType:
    """The engine-neutral type of an Arrow type; unknown leaves keep Arrow's own name."""
    import pyarrow as pa

    if pa.types.is_struct(arrow):
        return Struct(
            tuple(Field(arrow.field(i).name, _neutral_from_arrow(arrow.field(i).type)) for i in range(arrow.num_fields))
        )
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return Array(_neutral_from_arrow(arrow.value_type))
    if pa.types.is_map(arrow):
        return Map(_neutral_from_arrow(arrow.key_type), _neutral_from_arrow(arrow.item_type))
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return Primitive("string")
    if pa.types.is_int32(arrow):
        return Primitive("int")
    if pa.types.is_int64(arrow):
        return Primitive("bigint")
    if pa.types.is_timestamp(arrow):
        return Primitive("timestamp")
    return Primitive(str(arrow))


def _neutral_from_spark(spark: Any) -> DataType:
    """The engine-neutral type of a Spark type; unknown leaves keep Spark's own name."""
    from pyspark.sql import types as T

    if isinstance(spark, T.StructType):
        return Struct(tuple(Field(f.name, _neutral_from_spark(f.dataType)) for f in spark.fields))
    if isinstance(spark, T.ArrayType):
        return Array(_neutral_from_spark(spark.elementType))
    if isinstance(spark, T.MapType):
        return Map(_neutral_from_spark(spark.keyType), _neutral_from_spark(spark.valueType))
    names = {
        T.StringType: "string",
        T.IntegerType: "int",
        T.LongType: "bigint",
        T.TimestampType: "timestamp",
        T.TimestampNTZType: "timestamp",
    }
    for spark_class, name in names.items():
        if isinstance(spark, spark_class):
            return Primitive(name)
    return Primitive(spark.simpleString())


def _kind(data_type: DataType) -> str:
    if isinstance(data_type, Primitive):
        return data_type.name
    return type(data_type).__name__.lower()


def type_mismatches(path: str, actual: DataType, expected: DataType) -> list[str]:
    """Differences between a type found in data and the declared one (nullability and child names are not types)."""
    if type(actual) is not type(expected) or (isinstance(expected, Primitive) and actual != expected):
        return [f"{path}: expected {_kind(expected)}, found {_kind(actual)}"]
    if isinstance(expected, Struct) and isinstance(actual, Struct):
        found = {f.name: f.type for f in actual.fields}
        problems = [f"{path}.{name}: unexpected column" for name in found if name not in expected.names()]
        for member in expected.fields:
            if member.name not in found:
                problems.append(f"{path}.{member.name}: missing column")
            else:
                problems.extend(type_mismatches(f"{path}.{member.name}", found[member.name], member.type))
        return problems
    if isinstance(expected, Array) and isinstance(actual, Array):
        return type_mismatches(f"{path}[]", actual.element, expected.element)
    if isinstance(expected, Map) and isinstance(actual, Map):
        return type_mismatches(f"{path}{{key}}", actual.key, expected.key) + type_mismatches(
            f"{path}{{value}}", actual.value, expected.value
        )
    return []


def arrow_mismatches(schema: pa.Schema, source: Source, version: int) -> list[str]:
    """Every column of an Arrow schema that differs from the declared table; empty when the file conforms.

    Nullability, list element names (parquet-mr writes `array`) and map entry names are not compared.
    """
    import pyarrow as pa

    return type_mismatches("", _neutral_from_arrow(pa.struct(list(schema))), table_type(source, version))


def projected_type(source: Source, version: int, columns: tuple[str, ...] | None = None) -> Struct:
    """The table's row type, or only the named top-level columns that the table has (in the table's order)."""
    whole = table_type(source, version)
    if columns is None:
        return whole
    return Struct(tuple(f for f in whole.fields if f.name in columns))


def spark_mismatches(
    schema: spark_types.StructType, source: Source, version: int, columns: tuple[str, ...] | None = None
) -> list[str]:
    """Every column of a Spark schema that differs from the declared table (or its projection on `columns`: what a
    query selected); empty when the data conforms."""
    return type_mismatches("", _neutral_from_spark(schema), projected_type(source, version, columns))


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


def spark_schema(source: Source, version: int, columns: tuple[str, ...] | None = None) -> spark_types.StructType:
    """The Spark StructType of one Security Lake table, as Glue declares it (or of the named columns only)."""
    result = _spark_type(projected_type(source, version, columns))
    from pyspark.sql import types as spark_types

    if not isinstance(result, spark_types.StructType):
        message = f"{source.value} version {version} is not a struct of columns"
        raise TypeError(message)
    return result
