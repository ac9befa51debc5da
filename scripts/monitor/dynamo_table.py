"""A DynamoDB table the monitor uses, with its client made on first use (no AWS call at import or construction)."""

from __future__ import annotations

from typing import Any


class DynamoTable:
    """One table's name and the DynamoDB client that reaches it (given, else boto3's default, made when first used)."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client
