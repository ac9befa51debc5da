"""Which organisation an autonomous system's name belongs to, and whether it is a cloud, a CDN or another network.

A provider announces its space from several autonomous systems (Amazon: AMAZON-02, AMAZON-AES, "Amazon Data
Services Ireland Ltd", ...); a workload that talks to S3 meets all of them, so novelty is counted per organisation.
Names outside this list are their own organisation, of kind `network` (an ISP, a residential or business line, a
hosting company not listed here). The patterns match whole names: AMAZONIA TELECOMUNICACOES is not Amazon, and
GOOGLE-FIBER is an ISP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLOUD = "cloud"
CDN = "cdn"
NETWORK = "network"
KINDS = (CLOUD, CDN, NETWORK)
RESERVED_NAMES = frozenset({"", "<unknown>", "IANA.ORG"})  # private, reserved or unannounced: no owner to learn


@dataclass(frozen=True)
class Provider:
    organisation: str
    kind: str
    pattern: re.Pattern[str]


def _provider(organisation: str, kind: str, pattern: str) -> Provider:
    return Provider(organisation, kind, re.compile(pattern, re.IGNORECASE))


PROVIDERS: tuple[Provider, ...] = (
    _provider("Amazon", CLOUD, r"AMAZON-(?:\d+|AES|AS|CORP)|Amazon(?:\.com.*| Data Services.*| Technologies.*)"),
    _provider(
        "Google",
        CLOUD,
        r"GOOGLE(?:-CLOUD-PLATFORM|-\d+|-IT)?|GOOGLE CLOUD NETWORKING"
        r"|Google (?:LLC|Cloud.*|Ireland Limited|Asia Pacific Pte\. Ltd\.|Singapore Pte\. Ltd\.)",
    ),
    _provider("Microsoft", CLOUD, r"MICROSOFT-CORP.*|Microsoft (?:Corporation|Limited|Deutschland.*|Azure.*)"),
    _provider("Oracle", CLOUD, r"ORACLE-.*|Oracle Corporation"),
    _provider("IBM Cloud", CLOUD, r"SOFTLAYER|IBM-CLOUD.*"),
    _provider("Alibaba", CLOUD, r"ALIBABA-CN-NET|Alibaba.*|ALIBABA-.*"),
    _provider("Tencent", CLOUD, r"TENCENT-NET-AP.*|Tencent.*"),
    _provider("DigitalOcean", CLOUD, r"DIGITALOCEAN-ASN|DigitalOcean.*"),
    _provider("Linode", CLOUD, r"LINODE-AP|Linode.*"),
    _provider("OVH", CLOUD, r"OVH SAS|OVH.*"),
    _provider("Hetzner", CLOUD, r"Hetzner Online GmbH"),
    _provider("Vultr", CLOUD, r"AS-CHOOPA|AS-VULTR|VULTR.*"),
    _provider("Cloudflare", CDN, r"CLOUDFLARENET|Cloudflare.*"),
    _provider("Akamai", CDN, r"AKAMAI-.*|Akamai.*"),
    _provider("Fastly", CDN, r"FASTLY"),
)


def classify(name: str) -> tuple[str, str]:
    """(organisation, kind) of an autonomous system's name; an unlisted name is its own organisation, a `network`."""
    for provider in PROVIDERS:
        if provider.pattern.fullmatch(name):
            return provider.organisation, provider.kind
    return name, NETWORK
