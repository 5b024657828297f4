"""boto3's transfer layer re-raises S3 errors as its own classes; the transient
classifier judges them by the error they wrap (real boto3/s3transfer classes)."""

from __future__ import annotations

import pytest
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from botocore.exceptions import ClientError, ReadTimeoutError
from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceededError

from buttress import is_transient


def client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def upload_failed(cause: BaseException) -> S3UploadFailedError:
    """Raised as boto3 raises it: inside ``except ClientError`` (so ``__context__``)."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}")  # noqa: B904
    except S3UploadFailedError as failed:
        return failed


@pytest.mark.parametrize(("status", "code", "expected"), [
    (503, "SlowDown", True), (500, "InternalError", True), (429, "TooManyRequests", True),
    (403, "AccessDenied", False), (404, "NoSuchBucket", False), (400, "InvalidArgument", False),
])
def test_an_upload_failure_is_as_transient_as_the_client_error_it_wraps(
        status: int, code: str, expected: bool) -> None:
    assert is_transient(upload_failed(client_error(status, code))) is expected


def test_an_upload_failure_with_nothing_wrapped_is_not_transient() -> None:
    assert is_transient(S3UploadFailedError("Failed to upload")) is False


@pytest.mark.parametrize("cls", [RetriesExceededError, TransferRetriesExceededError])
def test_exhausted_transfer_retries_are_judged_by_the_last_exception(cls: type) -> None:
    assert is_transient(cls(ReadTimeoutError(endpoint_url="http://s3"))) is True
    assert is_transient(cls(ValueError("bad"))) is False
