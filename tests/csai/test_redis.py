import threading
from concurrent.futures import ThreadPoolExecutor

from csai.redis import redis_client, redis_client_reset


def test_threads_asking_at_once_share_one_client_and_its_pool():
    """A spare client would close its pool under the pipeline of the thread that made it."""
    redis_client_reset()
    start = threading.Barrier(20)

    def ask(_):
        start.wait()
        client = redis_client()
        client.ping()
        return id(client)

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert len(set(pool.map(ask, range(20)))) == 1
