"""The report page in a real headless browser: no console errors, a row per system, a non-blank screenshot."""

import io

from PIL import Image
import numpy as np
import pandas as pd
import pytest

from chromium_page import Page, find_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not found: install Debian's `chromium` (apt-get install -y chromium; .ci/run does) "
                    "to test the report page in a real browser")
    return binary


@pytest.mark.slow
def test_report_loads_offline_with_a_row_per_system_and_renders(evaluated, chromium):
    root = evaluated[0]
    report = root / "reports/report.html"
    text = report.read_text()
    assert "http://" not in text.replace("http://www.robots.ox.ac.uk", "") and "https://" not in text
    assert "<script" not in text                                      # nothing to fetch, nothing to run
    agg = pd.read_parquet(root / "data/interim/evaluate/aggregates.parquet")
    page = Page(chromium)
    try:
        errors = page.load(report.resolve().as_uri())
        assert errors == []
        for protocol in ("reconstruction", "dubbing"):
            systems = page.evaluate(f"[...document.querySelectorAll('table.metrics[data-protocol={protocol}] tbody tr')]"
                                    ".map(r => r.dataset.system)")
            a = agg[agg.protocol == protocol]
            expected = {s if pd.isna(v) else f"{s}:{v}" for s, v in zip(a.system, a.variant)}
            assert sorted(systems) == sorted(expected) and len(systems) == len(expected)
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("document.images.length") > 10       # charts and frames are embedded images
        png = page.screenshot()
    finally:
        page.close()
    shot = _grey(png)
    assert shot.shape[0] > 500 and shot.std() > 10 and (shot < 128).mean() > 0.005   # text and tables drawn


def test_the_browser_check_catches_console_errors_and_blank_pages(tmp_path, chromium):
    """The harness itself can fail: a page that logs an error and draws nothing is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
                   "<script>console.error('boom'); undefined_function();</script></body></html>")
    page = Page(chromium)
    try:
        errors = page.load(bad.as_uri())
        png = page.screenshot()
    finally:
        page.close()
    assert any("boom" in e for e in errors) and any("undefined_function" in e for e in errors)
    shot = _grey(png)
    assert shot.std() < 1                                                 # blank


def _grey(png: bytes) -> np.ndarray:
    """The screenshot as a grey uint8 array. Pillow, not cv2.imdecode: OpenCV's libpng fails ("bad
    parameters to zlib") once PyAV has decoded media in the same process, as in the full test run."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))
