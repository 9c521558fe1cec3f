"""The demo notice on every console page while (or once) ``make run`` built demo history."""

from lab import journey


def demo_history(request) -> dict:
    # A callable: the template asks the cache only when it shows the notice.
    return {"demo_history": journey.status}
