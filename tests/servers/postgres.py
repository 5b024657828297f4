"""A real PostgreSQL server for the tests, on 127.0.0.1 and a random free port.

It runs the Debian ``postgresql`` package's binaries (``/usr/lib/postgresql/<v>/bin``,
installed by ``scripts/install-postgres.sh``; ``BUTTRESS_PG_BIN`` overrides the
directory). ``initdb`` runs once per test process into a temporary directory;
every server is a copy of that cluster, so the second one (for the tests that
break their server, :func:`spare_server`) costs a copy and a start, not
another ``initdb``. Both are stopped, and the cluster deleted, by :func:`shutdown`.

PostgreSQL refuses to run as root, so when the tests run as root the cluster
belongs to, and the server runs as, the ``postgres`` system user (the package
creates it); otherwise as the current user. Authentication is ``trust`` on
loopback only. Each server process asks the kernel for a parent-death signal,
so a test run that is killed leaves no server behind.

The fault helpers act on the real processes: :meth:`PostgresServer.stop`
(fast shutdown, or ``immediate`` like a crash), :meth:`PostgresServer.pause` and
:meth:`PostgresServer.resume` (SIGSTOP/SIGCONT on the postmaster and every
backend), :meth:`PostgresServer.terminate_backends` (``pg_terminate_backend``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_VERSION = "15"
START_TIMEOUT = 30.0  # seconds; a loaded 2-core machine needs a few


def bin_dir() -> Path:
    """Where the PostgreSQL server binaries are."""
    given = os.environ.get("BUTTRESS_PG_BIN")
    if given:
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    preferred = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
    if (preferred / "initdb").exists() or not found:
        return preferred
    return found[-1].parent


def free_port() -> int:
    """A loopback port nobody listens on (now): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child after the user switch (which would clear it).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG: immediate shutdown


class _Owner:
    """Who owns the cluster and runs the server: ``postgres`` under root."""

    def __init__(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self.uid: int | None = entry.pw_uid
            self.gid: int | None = entry.pw_gid
            self.home = entry.pw_dir
        else:
            self.uid = self.gid = None
            self.home = os.environ.get("HOME", "/tmp")

    def popen_options(self) -> dict[str, object]:
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home, "LC_ALL": "C", "LANG": "C"}
        options: dict[str, object] = {"env": env, "preexec_fn": _die_with_parent}
        if self.uid is not None:
            options.update(user=self.uid, group=self.gid, extra_groups=[])
        return options

    def make_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        if self.uid is not None:
            os.chown(path, self.uid, self.gid or -1)
        path.chmod(0o700)
        return path

    def run(self, *command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=120, **self.popen_options())  # type: ignore[call-overload]
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}")


class Cluster:
    """An initdb'd data directory to copy servers from."""

    def __init__(self) -> None:
        self.owner = _Owner()
        self.bin = bin_dir()
        if not (self.bin / "postgres").exists():
            raise RuntimeError(f"no PostgreSQL server in {self.bin}: "
                               "run scripts/install-postgres.sh (as root)")
        self.root = self.owner.make_dir("buttress-pg-")
        self.template = self.root / "template"
        self.owner.run(str(self.bin / "initdb"), "-D", str(self.template), "-U", "postgres",
                       "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        self._copies = 0

    def server(self) -> PostgresServer:
        """A new server on a copy of the template (not started)."""
        self._copies += 1
        data = self.root / f"data{self._copies}"
        shutil.copytree(self.template, data, symlinks=True)
        if self.owner.uid is not None:
            for path in (data, *data.rglob("*")):
                os.lchown(path, self.owner.uid, self.owner.gid or -1)
        return PostgresServer(self, data)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresServer:
    """One postmaster on 127.0.0.1:``port``; :attr:`url` is its SQLAlchemy URL."""

    def __init__(self, cluster: Cluster, data: Path) -> None:
        self.cluster = cluster
        self.data = data
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}.log"

    @property
    def url(self) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The libpq connection string, for psycopg directly."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> PostgresServer:
        """Start the postmaster and wait until it accepts connections."""
        if self.running:
            return self
        settings = {
            "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.data),
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "max_connections": "40", "shared_buffers": "16MB", "max_wal_size": "64MB",
            "logging_collector": "off", "log_min_messages": "warning",
        }
        command = [str(self.cluster.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self.cluster.owner.popen_options())
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.running:
                raise RuntimeError(f"postgres exited at start: {self.log_tail()}")
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, *, immediate: bool = False) -> None:
        """Shut the server down: fast (SIGINT: clients are disconnected, work
        rolled back) or immediate (SIGQUIT: like a crash, recovery at next start)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()  # a paused server can not shut down
            self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _pids(self) -> list[int]:
        """The postmaster and its children (the backends and helpers)."""
        if not self.running or self.process is None:
            return []
        root = self.process.pid
        pids = [root]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == root:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP every server process: connections stay open, nothing answers."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT every server process."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def execute(self, sql: str) -> list[tuple[object, ...]]:
        """Run ``sql`` on a connection of its own (autocommit) and return the rows."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def terminate_backends(self, application_name: str | None = None) -> int:
        """``pg_terminate_backend`` every client backend but this helper's own
        (or only those of ``application_name``); returns how many were ended."""
        where = "backend_type = 'client backend' AND pid <> pg_backend_pid()"
        if application_name is not None:
            where += f" AND application_name = '{application_name}'"
        rows = self.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}")
        return sum(1 for (ended,) in rows if ended)

    def close(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def unavailable(reason: str) -> None:
    """Fail under ``CI=true`` (a missing server must not pass silently), else skip."""
    message = f"PostgreSQL test server unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_cluster: Cluster | None = None
_shared: PostgresServer | None = None
_spare: PostgresServer | None = None


def cluster() -> Cluster:
    """The process's template cluster (initdb on first use), or fail/skip."""
    global _cluster
    if _cluster is None:
        try:
            _cluster = Cluster()
            atexit.register(shutdown)  # when no session fixture did it first
        except (OSError, RuntimeError, KeyError, subprocess.SubprocessError) as exc:
            unavailable(str(exc))
    assert _cluster is not None
    return _cluster


def shared_server() -> PostgresServer:
    """The server the well-behaved tests share (started once, restarted if a
    test left it down)."""
    global _shared
    if _shared is None:
        _shared = cluster().server()
    try:
        return _shared.start()
    except Exception as exc:
        unavailable(f"{exc}\n{_shared.log_tail()}")
        raise


def spare_server() -> PostgresServer:
    """A second server, for the tests that stop, pause or cut theirs: handed out
    running and resumed, whatever the previous test left."""
    global _spare
    if _spare is None:
        _spare = cluster().server()
    _spare.resume()
    try:
        return _spare.start()
    except Exception as exc:
        unavailable(f"{exc}\n{_spare.log_tail()}")
        raise


def shutdown() -> None:
    """Stop every server of this process and delete the cluster."""
    global _cluster, _shared, _spare
    for server in (_shared, _spare):
        if server is not None:
            server.close()
    _shared = _spare = None
    if _cluster is not None:
        _cluster.remove()
        _cluster = None
