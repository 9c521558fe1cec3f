"""kombu's Redis transport, made to survive the loss of Redis (``CELERY_BROKER_TRANSPORT``).

When Redis goes away while the worker holds unacknowledged messages (a task running, or
one waiting for its ETA), the worker closes its broken connection and reconnects. Closing
runs twice: the first attempt fails on the dead socket after kombu has already detached
the transport from its connection; the second then tries to put the held messages back
and, to reach Redis, reads the host from the detached connection:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. Celery does not expect
that error there and stops the worker ("Unrecoverable error").

Here that case is the connection error it really is, which kombu already handles: the
messages stay in Redis's unacked set, are delivered again after the visibility timeout,
and the worker reconnects.
"""

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
