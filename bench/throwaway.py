"""A database of a benchmark's own: created and migrated at the start, dropped at the end.

Every benchmark writes its rows there, on the configured server (the embedded PostgreSQL or
``DATABASE_URL``), so it never reads or deletes anyone's data and needs no clean-up that
knows the product's tables. ``manage.py simulate`` replays the same way.
"""

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

PREFIX = "bench_"


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """Point Django's connection at a new, migrated database ``bench_<name>_<pid>`` and
    yield its URL for the processes the benchmark starts; drop it on the way out.

    Call after ``django.setup()``. The caller stops its processes before leaving the block,
    and turns SIGTERM into an exception so that the block is left. A database left by a
    benchmark that was killed outright is dropped by the next one.
    """
    from django.conf import settings
    from django.db import connection

    _drop_abandoned()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{PREFIX}{name}_{os.getpid()}"
    original = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        url = urlsplit(settings.DATABASE_URL)._replace(path=f"/{connection.settings_dict['NAME']}")
        yield urlunsplit(url)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def _drop_abandoned() -> None:
    """Drop bench databases whose process is gone from this machine (one still in use
    refuses to be dropped, and stays)."""
    from django.db import DatabaseError, connection

    with connection.cursor() as cursor:
        cursor.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'")
        for (database,) in cursor.fetchall():
            pid = database.rsplit("_", 1)[-1]
            if not pid.isdigit() or _running(int(pid)):
                continue
            with contextlib.suppress(DatabaseError):
                cursor.execute(f"DROP DATABASE {connection.ops.quote_name(database)}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True
