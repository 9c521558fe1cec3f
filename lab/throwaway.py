"""A database of a run's own: created and migrated at the start, dropped at the end.

The benchmarks and ``manage.py simulate`` write their rows there, on the configured server
(the embedded PostgreSQL or ``DATABASE_URL``), so they never read or delete anyone's data and
need no clean-up that knows the product's tables.
"""

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """Point Django's connection at a new, migrated database ``<prefix><pid>`` and yield its
    URL for the processes the run starts; drop it on the way out.

    Call after ``django.setup()``. The caller stops its processes before leaving the block,
    and turns SIGTERM into an exception so that the block is left. A database left by a run
    that was killed outright is dropped by the next one with the same prefix.
    """
    from django.conf import settings
    from django.db import connection

    _drop_abandoned(prefix)
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{prefix}{os.getpid()}"
    original = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        url = urlsplit(settings.DATABASE_URL)._replace(path=f"/{connection.settings_dict['NAME']}")
        yield urlunsplit(url)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def _drop_abandoned(prefix: str) -> None:
    """Drop the ``prefix`` databases whose process is gone from this machine (one still in
    use, by a run on another machine, refuses to be dropped, and stays)."""
    from django.db import DatabaseError, connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])
        for (database,) in cursor.fetchall():
            pid = database.removeprefix(prefix)
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
