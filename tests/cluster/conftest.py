"""Fixtures for cluster tests: moto's S3 server on 127.0.0.1 as the shared zone."""

from __future__ import annotations

from kachery_flows.testing.fixtures import aws_env as aws_env
from kachery_flows.testing.fixtures import moto_server as moto_server
from kachery_flows.testing.fixtures import s3_bucket as s3_bucket

__all__ = ["aws_env", "moto_server", "s3_bucket"]
