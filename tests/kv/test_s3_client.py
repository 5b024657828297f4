"""The S3 client against moto's real S3 server, behind a shim that answers
scripted S3 errors: what is retried (5xx, throttling, lost connections), what
never is (4xx), that botocore does not retry underneath, the breaker, recovery
and health. Backoff and breaker time is virtual."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from buttress import CircuitBreakerError, ConfigurationError
from buttress.fault_proxy import FaultProxy
from buttress.stores.s3_client import S3Client, get_s3_client
from buttress.testing import VirtualClock
from servers.s3 import MotoS3, S3Shim

BUCKET = "models"


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> str:
    """Every case runs on ``upload_file``/``download_file`` and their async twins."""
    return str(request.param)


async def upload(client: S3Client, face: str, *args: Any) -> None:
    if face == "sync":
        client.upload_file(*args)
    else:
        await client.async_upload_file(*args)


async def download(client: S3Client, face: str, *args: Any) -> None:
    if face == "sync":
        client.download_file(*args)
    else:
        await client.async_download_file(*args)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def bucket(moto_s3: MotoS3) -> Iterator[str]:
    """An empty bucket on moto (made straight, not through the shim)."""
    s3 = boto3.client("s3", endpoint_url=moto_s3.url)
    s3.create_bucket(Bucket=BUCKET)
    yield BUCKET
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 100)
    return path


def via(shim: S3Shim, clock: VirtualClock, **options: Any) -> S3Client:
    return get_s3_client(shim.url, clock=clock, jitter=False, **options)


async def test_upload_and_download_round_trip(s3_shim: S3Shim, clock: VirtualClock,
                                              bucket: str, model: Path, tmp_path: Path,
                                              face: str) -> None:
    client = via(s3_shim, clock)
    await upload(client, face, model, bucket, "v1/model.bin")
    await download(client, face, bucket, "v1/model.bin", tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == model.read_bytes()
    assert s3_shim.requests == 3  # PutObject; HeadObject + GetObject
    assert clock.sleeps == []


@pytest.mark.parametrize(("status", "code"), [
    (503, "SlowDown"), (500, "InternalError"), (503, "ServiceUnavailable"),
    (400, "RequestTimeout"), (429, "TooManyRequests"),
])
async def test_throttling_and_5xx_are_retried_by_buttress_alone(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str, model: Path, face: str,
        status: int, code: str) -> None:
    client = via(s3_shim, clock)
    s3_shim.fail(status, code, times=2)
    await upload(client, face, model, bucket, "k")
    # Two scripted failures, then the upload: one request each, botocore sent no more.
    assert s3_shim.requests == 3
    assert s3_shim.forwarded == 1
    assert clock.sleeps == [0.2, 0.4]


@pytest.mark.parametrize(("status", "code"), [
    (403, "AccessDenied"), (400, "InvalidArgument"), (404, "NoSuchBucket"),
    (409, "BucketAlreadyExists"),
])
async def test_a_4xx_client_error_is_never_retried_nor_counted_by_the_breaker(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str, model: Path, face: str,
        status: int, code: str) -> None:
    client = via(s3_shim, clock, failure_threshold=1)
    s3_shim.fail(status, code, times=5)
    with pytest.raises(Exception, match=code):
        await upload(client, face, model, bucket, "k")
    assert s3_shim.requests == 1
    assert clock.sleeps == []
    assert client.breaker.state.value == "closed"


async def test_a_missing_object_raises_the_404_at_once(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str, tmp_path: Path, face: str) -> None:
    client = via(s3_shim, clock)
    with pytest.raises(ClientError) as caught:
        await download(client, face, bucket, "missing", tmp_path / "x")
    assert caught.value.response["Error"]["Code"] == "404"
    assert s3_shim.requests == 1


async def test_exhausted_retries_raise_the_last_error(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str, model: Path, face: str) -> None:
    client = via(s3_shim, clock, failure_threshold=10)
    s3_shim.fail(503, "SlowDown", times=3)
    with pytest.raises(Exception, match="SlowDown"):
        await upload(client, face, model, bucket, "k")
    assert s3_shim.requests == 3


async def test_the_breaker_opens_fails_fast_and_recovers(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str, model: Path, tmp_path: Path,
        face: str) -> None:
    client = via(s3_shim, clock, recovery_timeout=30.0)
    s3_shim.fail(503, "SlowDown", times=3)
    with pytest.raises(Exception, match="SlowDown"):
        await upload(client, face, model, bucket, "k")
    assert client.breaker.state.value == "open"  # 3 failed requests
    with pytest.raises(CircuitBreakerError):
        await upload(client, face, model, bucket, "k")
    assert s3_shim.requests == 3  # the rejected call made no request
    health = client.health_check(bucket)
    assert (health["status"], health["circuit_breaker"]) == ("unhealthy", "open")
    assert s3_shim.requests == 3
    clock.advance(30.0)
    await upload(client, face, model, bucket, "k")  # the first probe succeeds
    assert client.breaker.state.value == "half_open"
    await download(client, face, bucket, "k", tmp_path / "k")  # the second closes it
    assert client.breaker.state.value == "closed"
    assert client.health_check(bucket)["status"] == "healthy"


async def test_a_refused_connection_is_retried_then_recovers(
        moto_s3: MotoS3, clock: VirtualClock, bucket: str, model: Path, face: str) -> None:
    with FaultProxy("127.0.0.1", moto_s3.port) as proxy:
        client = get_s3_client(f"http://127.0.0.1:{proxy.port}", clock=clock, jitter=False,
                               failure_threshold=5)
        proxy.refuse()
        with pytest.raises(EndpointConnectionError):
            await upload(client, face, model, bucket, "k")
        assert clock.sleeps == [0.2, 0.4]
        proxy.restore()
        await upload(client, face, model, bucket, "k")
        assert client.breaker.stats.failed_calls == 3


async def test_a_connection_reset_mid_request_is_retried(
        moto_s3: MotoS3, clock: VirtualClock, bucket: str, model: Path, face: str) -> None:
    with FaultProxy("127.0.0.1", moto_s3.port) as proxy:
        client = get_s3_client(f"http://127.0.0.1:{proxy.port}", clock=clock, jitter=False)
        proxy.reset_after(b"PUT /models/k")  # the request reaches S3, the answer does not
        await upload(client, face, model, bucket, "k")
        assert clock.sleeps == [0.2]
        assert proxy.connections_accepted == 2


def test_health_check_heads_the_bucket_or_lists_buckets(
        s3_shim: S3Shim, clock: VirtualClock, bucket: str) -> None:
    client = via(s3_shim, clock)
    health = client.health_check(bucket)
    assert (health["status"], health["bucket"], health["error"]) == ("healthy", bucket, None)
    assert client.health_check()["status"] == "healthy"
    missing = client.health_check("no-such-bucket")
    assert missing["status"] == "unhealthy"
    assert "404" in missing["error"]
    assert client.breaker.state.value == "closed"  # S3 answered


def test_botocore_and_the_transfer_layer_make_one_attempt_each(clock: VirtualClock) -> None:
    client = get_s3_client("http://127.0.0.1:1", clock=clock)
    retries = client.client.meta.config.retries
    assert retries["total_max_attempts"] == 1
    assert retries["mode"] == "standard"
    assert client.transfer_config.num_download_attempts == 1
    assert client.transfer_config.use_threads is False


def test_no_keyword_returns_one_shared_client_per_endpoint() -> None:
    assert get_s3_client("http://127.0.0.1:1") is get_s3_client("http://127.0.0.1:1")
    assert get_s3_client("http://127.0.0.1:1", max_attempts=2) is not get_s3_client(
        "http://127.0.0.1:1")


@pytest.mark.parametrize(("keyword", "value"), [
    ("max_attempts", 0), ("failure_threshold", 0), ("recovery_timeout", -1.0),
    ("connect_timeout", 0.0), ("read_timeout", -2.0),
])
def test_a_bad_setting_is_refused_naming_it(keyword: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        get_s3_client("http://127.0.0.1:1", **{keyword: value})
    assert caught.value.field == f"get_s3_client.{keyword}"
