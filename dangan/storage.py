"""The S3 client (minio), opened once per process."""

from __future__ import annotations

from minio import Minio

from dangan.devstack import Endpoints


def s3_client(endpoints: Endpoints) -> Minio:
    return Minio(
        endpoints.s3_endpoint,
        access_key=endpoints.s3_access_key,
        secret_key=endpoints.s3_secret_key,
        secure=endpoints.s3_secure,
        region="us-east-1",
    )


def ensure_bucket(client: Minio, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
