"""htmx is ours to serve: vendored, pinned to major version 2, licence kept, no CDN."""

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_it_vendors_htmx_2_with_its_licence():
    source = (STATIC / "vendor/htmx/htmx.min.js").read_text()
    assert re.match(r"/\*! htmx 2\.\d+\.\d+ .*0BSD", source)
    assert "Zero-Clause BSD" in (STATIC / "vendor/htmx/LICENSE").read_text()


def test_it_loads_scripts_only_from_our_own_static_files(reviewer_client):
    html = reviewer_client.get("/review/").content.decode()
    sources = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert sources == ["/static/vendor/htmx/htmx.min.js", "/static/review/console.js"]
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
