"""Stand-ins for the readers' own HTTP libraries, which the seed examples call.

``requests``, ``httpx`` and ``aiohttp`` are not installed here, so each is
replaced by a few lines of ``urllib.request`` talking to the real loopback
:class:`~buttress.flaky_server.FlakyServer`. They mimic only the surface the
seed examples touch (``requests.get(...).raise_for_status()``, ``.json()``,
``httpx.AsyncClient``, ``aiohttp.ClientSession``) and the exception classes the
examples name. Nothing here replaces or touches buttress.
"""

from __future__ import annotations

import asyncio
import json as _json
import socket
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any

# --- one blocking round trip -------------------------------------------------------------


def fetch_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` with urllib and decode the JSON body. Error statuses raise urllib's
    own ``HTTPError`` (``.code``/``.status``), closed first so no socket is left open."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return _json.load(answer)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise


class RequestException(OSError):
    """Base of the requests-like errors; carries the response when there is one."""

    def __init__(self, *args: object, response: Response | None = None) -> None:
        super().__init__(*args)
        self.response = response


class HTTPError(RequestException):
    """requests.HTTPError: raised by ``raise_for_status`` for 4xx/5xx."""


class RequestsConnectionError(RequestException):
    """requests.ConnectionError: the server could not be reached."""


class RequestsTimeout(RequestException):
    """requests.Timeout."""


class Response:
    """What the examples read from a response."""

    def __init__(self, url: str, status_code: int, content: bytes) -> None:
        self.url = url
        self.status_code = status_code
        self.content = content

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return _json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HTTPError(f"{self.status_code} Error for url: {self.url}", response=self)


def send(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Response:
    """One real HTTP request with urllib; error statuses come back as responses."""
    data = None if body is None else _json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(url, answer.status, answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(url, exc.code, exc.read())
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RequestsTimeout(str(exc.reason)) from exc
        raise RequestsConnectionError(str(exc.reason)) from exc
    except TimeoutError as exc:
        raise RequestsTimeout(str(exc)) from exc


def _get(url: str, timeout: float = 5.0) -> Response:
    return send("GET", url, timeout=timeout)


def _post(url: str, json: Any = None, timeout: float = 5.0) -> Response:
    return send("POST", url, json, timeout=timeout)


requests = SimpleNamespace(
    get=_get,
    post=_post,
    RequestException=RequestException,
    HTTPError=HTTPError,
    ConnectionError=RequestsConnectionError,
    Timeout=RequestsTimeout,
)
"""The slice of ``requests`` the seed examples use."""


# --- httpx -------------------------------------------------------------------------------


class HttpxRequestError(Exception):
    """httpx.RequestError: transport failures."""


class HttpxConnectError(HttpxRequestError):
    """httpx.ConnectError."""


class HttpxTimeoutException(HttpxRequestError):
    """httpx.TimeoutException."""


class HTTPStatusError(Exception):
    """httpx.HTTPStatusError: raised by ``raise_for_status``; ``.response.status_code``."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message)
        self.response = response


class HttpxResponse(Response):
    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HTTPStatusError(f"{self.status_code} for url {self.url}", response=self)


class AsyncClient:
    """httpx.AsyncClient: a worker thread does the blocking urllib call."""

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def _send(self, method: str, url: str, body: Any = None) -> HttpxResponse:
        try:
            plain = await asyncio.to_thread(send, method, self.base_url + url, body)
        except RequestsTimeout as exc:
            raise HttpxTimeoutException(str(exc)) from exc
        except RequestsConnectionError as exc:
            raise HttpxConnectError(str(exc)) from exc
        return HttpxResponse(plain.url, plain.status_code, plain.content)

    async def get(self, url: str) -> HttpxResponse:
        return await self._send("GET", url)

    async def post(self, url: str, json: Any = None) -> HttpxResponse:
        return await self._send("POST", url, json)


httpx = SimpleNamespace(
    AsyncClient=AsyncClient,
    RequestError=HttpxRequestError,
    ConnectError=HttpxConnectError,
    TimeoutException=HttpxTimeoutException,
    HTTPStatusError=HTTPStatusError,
)
"""The slice of ``httpx`` the seed examples use."""


# --- aiohttp -----------------------------------------------------------------------------


class ClientResponseError(Exception):
    """aiohttp.ClientResponseError: ``.status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClientResponse:
    def __init__(self, plain: Response) -> None:
        self._plain = plain
        self.status = plain.status_code

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise ClientResponseError(self.status, f"{self.status} for {self._plain.url}")

    async def json(self) -> Any:
        return self._plain.json()


class _RequestContext:
    def __init__(self, method: str, url: str, body: Any) -> None:
        self._args = (method, url, body)

    async def __aenter__(self) -> ClientResponse:
        return ClientResponse(await asyncio.to_thread(send, *self._args))

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class ClientSession:
    """aiohttp.ClientSession."""

    async def __aenter__(self) -> ClientSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def get(self, url: str) -> _RequestContext:
        return _RequestContext("GET", url, None)

    def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None
             ) -> _RequestContext:
        return _RequestContext("POST", url, json)


aiohttp = SimpleNamespace(ClientSession=ClientSession, ClientResponseError=ClientResponseError)
"""The slice of ``aiohttp`` the seed examples use."""


# --- helpers -----------------------------------------------------------------------------


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
