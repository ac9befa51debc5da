"""The detection benchmark's data: a generated lake, its pairs through a mapping, the last day, and the labels."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.samplelake.anomalies import ANOMALY_KINDS, EXTRA_ANOMALY_KINDS, STEALTHY_KINDS
from pipeline.samplelake.writer import LABELS_FILE, GenerationOptions, generate_lake
from scripts.detect.addressbook import AddressBook
from scripts.detect.settings import DetectorSettings
from scripts.detect.tunnelling import DomainQueries, answered_addresses, base_domain, collect, find_tunnels
from scripts.entity import account_of, base_entity
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import Source
from scripts.pairs.arrow_engine import address_book_table, address_rows, extract, queried_names
from scripts.pairs.mapping import ADDRESS_BOOK_RULE, BYTES_OUT, QUERY_NAME, mapping

DAY_MS = 86_400_000
END_DAY = dt.date(2026, 11, 20)


@dataclass(frozen=True)
class Split:
    """History pairs (every kept event) and the last day's distinct pairs, with the workload each belongs to."""

    history: pd.DataFrame
    target: pd.DataFrame
    last_day_start_ms: int


def ensure_lake(
    root: Path,
    seed: int,
    days: int,
    events_per_day: int,
    anomalies_per_kind: int,
    kinds: tuple[str, ...] = ANOMALY_KINDS,
    s3_rotation: bool = False,
    cross_account_calls: bool = False,
    ipam_subnets: bool = False,
    db_failover: float = 0.0,
    nightly_backups: bool = False,
) -> Path:
    """Generate the lake once per setting; later runs reuse it (the generator is deterministic)."""
    extra = "".join(f"+{EXTRA_ANOMALY_KINDS.index(k)}" for k in kinds if k in EXTRA_ANOMALY_KINDS)
    extra += "".join(f"+s{STEALTHY_KINDS.index(k)}" for k in kinds if k in STEALTHY_KINDS)
    extra += ("-s3r" if s3_rotation else "") + ("-xac" if cross_account_calls else "")
    extra += ("-ipam" if ipam_subnets else "") + (f"-dbf{db_failover:g}" if db_failover else "")
    extra += "-bak" if nightly_backups else ""
    lake = root / f"lake-s{seed}-d{days}-e{events_per_day}-a{anomalies_per_kind}{extra}"
    if not (lake / LABELS_FILE).is_file():
        generate_lake(
            GenerationOptions(
                root=lake,
                days=days,
                events_per_day=events_per_day,
                end_day=END_DAY,
                seed=seed,
                anomalies_per_kind=anomalies_per_kind,
                anomaly_kinds=kinds,
                s3_rotation=s3_rotation,
                cross_account_calls=cross_account_calls,
                ipam_subnets=ipam_subnets,
                db_failover=db_failover,
                nightly_backups=nightly_backups,
            )
        )
    return lake


def lake_pairs(lake: Path, mapping_name: str) -> pd.DataFrame:
    """Every kept (entity, ip, time) of the lake through a pair mapping, with the pyarrow engine."""
    pair_mapping = mapping(mapping_name)
    frames = []
    for path in sorted(lake.glob("s3/*/aws/*/*/region=*/accountId=*/eventDay=*/*.parquet")):
        location = parse_object_key(str(path))
        if location is None or location.version is None:
            continue
        source = Source(location.source)
        extraction = extract(pq.read_table(path), source, location.version, pair_mapping.rule(source))
        frames.append(extraction.pairs.to_pandas())
    combined: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return combined


def lake_address_book(lake: Path, before_ms: int) -> AddressBook:
    """The address book of the lake's flow records before `before_ms`, as the preprocessing step builds it."""
    frames = []
    for path in sorted(lake.glob("s3/*/aws/VPC_FLOW/*/region=*/accountId=*/eventDay=*/*.parquet")):
        location = parse_object_key(str(path))
        if location is None or location.version is None:
            continue
        rows = address_rows(pq.read_table(path), location.version, ADDRESS_BOOK_RULE)
        frames.append(rows.filter(pc.less(rows.column("time"), before_ms)))
    return AddressBook.of_table(address_book_table(pa.concat_tables(frames)))


def tunnel_pairs(
    lake: Path, mapping_name: str, last_day_start_ms: int, settings: DetectorSettings
) -> set[tuple[str, str]]:
    """The (workload, address) answer pairs of the DNS tunnels the monitor would find on the last day, object by
    object as it reads them, against the domains each account asked for before that day
    (scripts/detect/tunnelling.py)."""
    rule = mapping(mapping_name).rule(Source.ROUTE53)
    paths = sorted(lake.glob("s3/*/aws/ROUTE53/*/region=*/accountId=*/eventDay=*/*.parquet"))
    asked: set[tuple[str, str]] = set()
    last_day: list[tuple[pa.Table, pa.Table]] = []
    for path in paths:
        location = parse_object_key(str(path))
        if location is None or location.version is None:
            continue
        table = pq.read_table(path)
        queries = queried_names(table, location.version, rule)
        before = pc.less(queries.column("time"), last_day_start_ms)
        earlier = queries.filter(before)
        asked |= {
            (account_of(e), base_domain(n))
            for e, n in zip(earlier["entity"].to_pylist(), earlier["name"].to_pylist(), strict=True)
        }
        if not pc.all(before).as_py():
            pairs = extract(table, Source.ROUTE53, location.version, rule).pairs
            last_day.append((queries.filter(pc.invert(before)), pairs))
    found: set[tuple[str, str]] = set()
    for queries, pairs in last_day:
        seen: dict[tuple[str, str], DomainQueries] = {}
        collect(seen, *(queries[c].to_pylist() for c in ("entity", "name", "time")))
        tunnels = find_tunnels(
            seen,
            lambda entity, domain: (account_of(entity), domain) in asked,
            settings.tunnel_min_names,
            settings.tunnel_min_subdomain_length,
        )
        entities, ips, names = (pairs[c].to_pylist() for c in ("entity", "ip", QUERY_NAME))
        for tunnel in tunnels:
            found |= {(base_entity(entities[i]), ips[i]) for i in answered_addresses(tunnel, entities, ips, names)}
    return found


def split_last_day(pairs: pd.DataFrame) -> Split:
    """History before the last day; the last day's distinct pairs (with the bytes the entity sent to the address that
    day), keyed by workload (base entity) and ip."""
    last_start = (int(pairs["time"].max()) // DAY_MS) * DAY_MS
    history = pairs[pairs["time"] < last_start].reset_index(drop=True)
    day = pairs[pairs["time"] >= last_start]
    target = day.drop_duplicates(["entity", "ip"]).drop(columns=[BYTES_OUT]).reset_index(drop=True)
    sent = day.groupby(["entity", "ip"], as_index=False)[BYTES_OUT].sum()
    target = target.merge(sent, on=["entity", "ip"], how="left")
    target = target.assign(workload=[base_entity(e) for e in target["entity"]])
    return Split(history, target, last_start)


def labels(lake: Path) -> pd.DataFrame:
    return pd.read_csv(lake / LABELS_FILE, dtype=str)
