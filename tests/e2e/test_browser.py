"""GET / in a real headless Chromium: upload an image, see the top-5 bars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.images import jpeg
from tests.service.modelgen import FASHION_LABELS, write_version

from .cdp import Browser, find_chromium
from .conftest import MODEL, serve

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_upload_shows_top5_bars(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, seed=1)
    image = tmp_path / "shirt.jpg"
    image.write_bytes(jpeg(320, 240))
    assert CHROMIUM is not None
    with serve(repo) as srv:
        browser = Browser(CHROMIUM)
        try:
            session = browser.open_page(srv.url + "/")
            browser.wait_for(
                session, "document.readyState === 'complete' && !!document.getElementById('file')"
            )
            doc = browser.call("DOM.getDocument", session=session)["root"]["nodeId"]
            node = browser.call("DOM.querySelector", {"nodeId": doc, "selector": "#file"}, session=session)[
                "nodeId"
            ]
            browser.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(image)]}, session=session)
            state = browser.wait_for(
                session,
                "['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
            )
            error = browser.evaluate(session, "document.getElementById('error').textContent")
            assert state == "done", error
            rows = json.loads(
                browser.evaluate(
                    session,
                    """JSON.stringify([...document.querySelectorAll('.row')]
                .map(r => ({label: r.querySelector('.label').textContent,
                            width: parseFloat(r.querySelector('.bar').style.width),
                            shown: r.querySelector('.bar').getBoundingClientRect().width})))""",
                )
            )
            meta = browser.evaluate(session, "document.getElementById('meta').textContent")
        finally:
            browser.close()
    assert len(rows) == 5
    assert all(r["label"] in FASHION_LABELS for r in rows)
    widths = [r["width"] for r in rows]
    assert widths == sorted(widths, reverse=True) and 0 < sum(widths) <= 100.5
    assert rows[0]["shown"] > 0  # laid out, visible
    assert MODEL in meta
