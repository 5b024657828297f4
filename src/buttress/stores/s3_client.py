"""S3 through boto3 with one retry layer and a circuit breaker::

    from buttress import get_s3_client

    client = get_s3_client(endpoint_url="http://127.0.0.1:9000")
    client.upload_file("model.bin", "models", "v1/model.bin")
    await client.async_download_file("models", "v1/model.bin", "/tmp/model.bin")
    client.health_check("models")["status"]        # "healthy"

Which errors are retried (:func:`buttress.transient.is_transient`): connection
errors and timeouts, 5xx answers (500, 502, 503, 504) and throttling
(``SlowDown``, ``Throttling``, 429...). Never a 4xx client error (``NoSuchKey``,
``AccessDenied``, ``NoSuchBucket``...): it is raised at once, and it does not
count against the breaker either, since S3 answered. Defaults are those of
``file_resilient``: 3 attempts, 0.2 s then up to 5 s between them, the breaker
opening after 3 failed operations for 30 s.

botocore retries on its own too (legacy mode: 5 attempts; standard: 3), and so
does boto3's transfer layer for downloads (5 attempts). Both are set to one
attempt (``retries={"mode": "standard", "total_max_attempts": 1}``,
``TransferConfig(num_download_attempts=1)``), so ``max_attempts`` is the number of
requests S3 sees, not its square. Transfers run in the caller's thread
(``use_threads=False``); pass ``transfer_config=`` for threaded multipart
transfers. The ``async_*`` methods run each attempt in a worker thread (the
caller asked for async; boto3 has none) and wait between attempts on the loop.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from buttress._core import validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import CircuitBreakerError
from buttress._core.logs import describe, redact
from buttress._core.shared import SharedClients
from buttress.breaker import CircuitBreaker
from buttress.pipeline import Pipeline
from buttress.retry import Retry, RetryConfig
from buttress.transient import is_transient

__all__ = ["S3Client", "get_s3_client"]

PathT = str | Path


class _Answered:
    """A non-transient error carried out of the pipeline as a value: S3 answered
    (a 404, a 403), so it is neither retried nor a breaker failure."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _judged(fn: Callable[[], Any]) -> Callable[[], Any]:
    def attempt() -> Any:
        try:
            return fn()
        except Exception as exc:
            if is_transient(exc):
                raise
            return _Answered(exc)

    return attempt


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Answered):
        raise result.error
    return result


class S3Client:
    """A resilient S3 client (build it with :func:`get_s3_client`)."""

    def __init__(self, client: Any, *, name: str, max_attempts: int, base_delay: float,
                 max_delay: float, jitter: bool | float, failure_threshold: int,
                 recovery_timeout: float, transfer_config: TransferConfig,
                 clock: Clock | None) -> None:
        o = "get_s3_client"
        validate.integer(o, "max_attempts", max_attempts, minimum=1)
        validate.integer(o, "failure_threshold", failure_threshold, minimum=1)
        validate.number(o, "recovery_timeout", recovery_timeout, minimum=0.0)
        #: The boto3 client underneath (its own retries set to one attempt).
        self.client = client
        self.name = validate.text(o, "name", name)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self.transfer_config = transfer_config
        #: The circuit breaker guarding this endpoint.
        self.breaker = CircuitBreaker(self.name, failure_threshold=failure_threshold,
                                      recovery_timeout=recovery_timeout, clock=self.clock)
        self.retry_config = RetryConfig(
            max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay,
            jitter=jitter, retry_condition=is_transient, reraise=True, name=self.name)
        self._protect = Pipeline(Retry(self.retry_config, clock=self.clock), self.breaker)

    # the two runners: the same pipeline, sync in this thread, async around a thread

    def _call(self, fn: Callable[[], Any]) -> Any:
        return _unwrap(self._protect.call(_judged(fn)))

    async def _acall(self, fn: Callable[[], Any]) -> Any:
        attempt = _judged(fn)

        async def in_thread() -> Any:
            return await asyncio.to_thread(attempt)

        return _unwrap(await self._protect.acall(in_thread))

    # transfers

    def upload_file(self, filename: PathT, bucket: str, key: str,
                    extra_args: dict[str, Any] | None = None) -> None:
        """Upload the local file ``filename`` to ``bucket``/``key``."""
        self._call(lambda: self.client.upload_file(
            str(filename), bucket, key, ExtraArgs=extra_args, Config=self.transfer_config))

    def download_file(self, bucket: str, key: str, filename: PathT,
                      extra_args: dict[str, Any] | None = None) -> None:
        """Download ``bucket``/``key`` to the local file ``filename``. A missing
        object raises botocore's ``ClientError`` (404) at once."""
        self._call(lambda: self.client.download_file(
            bucket, key, str(filename), ExtraArgs=extra_args, Config=self.transfer_config))

    async def async_upload_file(self, filename: PathT, bucket: str, key: str,
                                extra_args: dict[str, Any] | None = None) -> None:
        """:meth:`upload_file` for async code: each attempt in a worker thread."""
        await self._acall(lambda: self.client.upload_file(
            str(filename), bucket, key, ExtraArgs=extra_args, Config=self.transfer_config))

    async def async_download_file(self, bucket: str, key: str, filename: PathT,
                                  extra_args: dict[str, Any] | None = None) -> None:
        """:meth:`download_file` for async code: each attempt in a worker thread."""
        await self._acall(lambda: self.client.download_file(
            bucket, key, str(filename), ExtraArgs=extra_args, Config=self.transfer_config))

    # health

    def health_check(self, bucket: str | None = None) -> dict[str, Any]:
        """``HeadBucket`` on ``bucket`` (``ListBuckets`` without one) through the
        breaker, no retry. ``status`` is ``"healthy"``, or ``"unhealthy"`` with the
        error (an open breaker answers at once, without a request)."""
        start = self.clock.monotonic()
        probe: Callable[[], Any] = (self.client.list_buckets if bucket is None
                                    else lambda: self.client.head_bucket(Bucket=bucket))
        error: BaseException | None = None
        try:
            _unwrap(self.breaker.call(_judged(probe)))
        except Exception as exc:
            error = exc
        latency = self.clock.monotonic() - start
        return {
            "status": "healthy" if error is None else "unhealthy",
            "endpoint": redact(str(self.client.meta.endpoint_url)),
            "bucket": bucket,
            "circuit_breaker": self.breaker.state.value,
            "latency_ms": None if isinstance(error, CircuitBreakerError)
            else round(latency * 1000.0, 3),
            "error": None if error is None else describe(error),
        }

    def __repr__(self) -> str:
        return f"S3Client({self.name!r}, breaker={self.breaker.state.value})"


_SHARED: SharedClients[str | None, S3Client] = SharedClients(32)


def get_s3_client(
    endpoint_url: str | None = None,
    *,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    name: str | None = None,
    max_attempts: int = 3,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    jitter: bool | float = 0.1,
    failure_threshold: int = 3,
    recovery_timeout: float = 30.0,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    transfer_config: TransferConfig | None = None,
    clock: Clock | None = None,
    **client_options: Any,
) -> S3Client:
    """A boto3 S3 client with buttress's retry and breaker, botocore's retries off.

    ``endpoint_url`` is for S3-compatible servers (MinIO, SeaweedFS, moto); without
    it boto3 finds the endpoint, region and credentials as usual (environment,
    ``~/.aws``, instance roles; ``AWS_ENDPOINT_URL`` too). ``connect_timeout`` and
    ``read_timeout`` (seconds) bound each attempt's socket waits; ``jitter`` is the
    fraction of each wait drawn at random (False: none). The breaker is
    named ``"s3"`` or ``"s3:<endpoint>"`` (``name=`` to choose). Other keywords go to
    ``boto3.client("s3", ...)``.

    Called with nothing but (optionally) ``endpoint_url``, it returns one shared
    client per endpoint (the seeds call ``get_s3_client()`` per request)::

        client = get_s3_client()
        client.upload_file("local_file.txt", "bucket", "key")
    """
    o = "get_s3_client"
    # The endpoint boto3 will use, so that a changed AWS_ENDPOINT_URL gets a new client.
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL")
    validate.number(o, "connect_timeout", connect_timeout, minimum=0.0, strict_minimum=True)
    validate.number(o, "read_timeout", read_timeout, minimum=0.0, strict_minimum=True)
    shared = (region_name is None and aws_access_key_id is None and name is None
              and clock is None and transfer_config is None and not client_options
              and (max_attempts, base_delay, max_delay, jitter, failure_threshold,
                   recovery_timeout, connect_timeout, read_timeout)
              == (3, 0.2, 5.0, 0.1, 3, 30.0, 5.0, 10.0))

    def make() -> S3Client:
        config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"mode": "standard", "total_max_attempts": 1})
        given = client_options.pop("config", None)
        if given is not None:
            config = given.merge(config)  # ours wins on retries and timeouts
        boto = boto3.client("s3", endpoint_url=endpoint_url, region_name=region_name,
                            aws_access_key_id=aws_access_key_id,
                            aws_secret_access_key=aws_secret_access_key, config=config,
                            **client_options)
        transfer = transfer_config or TransferConfig(use_threads=False,
                                                     num_download_attempts=1)
        return S3Client(
            boto, name=name or ("s3" if endpoint is None else f"s3:{redact(endpoint)}"),
            max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay,
            jitter=jitter, failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout, transfer_config=transfer, clock=clock)

    return _SHARED.get(endpoint, make) if shared else make()
