"""Settings for the floor server of ``bench/intake.py``: the product's settings (same
middleware, database, logging) with a URLconf holding a single one-INSERT view."""

from csai.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
