"""The store tests' real servers (``redis_server``, ``redis_url``, ``moto_s3``,
``s3_shim``): see :mod:`servers.fixtures`."""

from __future__ import annotations

from servers.fixtures import _aws_credentials, _s3_shim, moto_s3, redis_server, redis_url, s3_shim

__all__ = ["_aws_credentials", "_s3_shim", "moto_s3", "redis_server", "redis_url", "s3_shim"]
