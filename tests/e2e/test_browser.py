"""GET / in a real headless Chromium: upload an image, see the top-5 bars."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.images import jpeg
from tests.service.modelgen import FASHION_LABELS, write_version

from .cdp import Browser, find_chromium
from .conftest import MODEL, ROOT, serve

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_upload_shows_top5_bars(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, seed=1)
    image = tmp_path / "shirt.jpg"
    image.write_bytes(jpeg(320, 240))
    with _page(repo) as (browser, session):
        _upload(browser, session, image)
        rows = json.loads(
            browser.evaluate(
                session,
                """JSON.stringify([...document.querySelectorAll('.row')]
            .map(r => ({label: r.querySelector('.label').textContent,
                        width: parseFloat(r.querySelector('.bar').style.width),
                        shown: r.querySelector('.bar').getBoundingClientRect().width})))""",
            )
        )
        meta = _text(browser, session, "meta")
    assert len(rows) == 5
    assert all(r["label"] in FASHION_LABELS for r in rows)
    widths = [r["width"] for r in rows]
    assert widths == sorted(widths, reverse=True) and 0 < sum(widths) <= 100.5
    assert rows[0]["shown"] > 0  # laid out, visible
    assert MODEL in meta


# ---------------------------------------------------------------------------------------
# What the page says it serves (name, version, task, timing), the selector, the ImageNet hint

ARTIFACTS = Path(os.environ.get("XNORNET_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")


def _screenshot(browser: Browser, session: str, name: str) -> Path:
    """A PNG of the page, kept as a test artifact (look at it: layout bugs hide from asserts)."""
    height = int(browser.evaluate(session, "document.documentElement.scrollHeight"))
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": 800, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    data = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(data))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


@contextlib.contextmanager
def _page(repo: Path) -> Iterator[tuple[Browser, str]]:
    """(browser, session) on the page of a server for `repo`, loaded and ready for a file."""
    assert CHROMIUM is not None
    with serve(repo) as srv:
        browser = Browser(CHROMIUM)
        try:
            session = browser.open_page(srv.url + "/")
            browser.wait_for(
                session, "document.readyState === 'complete' && !!document.getElementById('file')"
            )
            yield browser, session
        finally:
            browser.close()


def _upload(browser: Browser, session: str, image: Path) -> str:
    browser.evaluate(session, "delete document.body.dataset.state")
    doc = browser.call("DOM.getDocument", session=session)["root"]["nodeId"]
    node = browser.call("DOM.querySelector", {"nodeId": doc, "selector": "#file"}, session=session)["nodeId"]
    browser.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(image)]}, session=session)
    state: str = browser.wait_for(
        session, "['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
    )
    assert state == "done", browser.evaluate(session, "document.getElementById('error').textContent")
    return state


def _text(browser: Browser, session: str, element: str) -> str:
    return str(browser.evaluate(session, f"document.getElementById('{element}').textContent"))


def _visible(browser: Browser, session: str, element: str) -> bool:
    return bool(
        browser.evaluate(
            session, f"(e => !e.hidden && e.offsetHeight > 0)(document.getElementById('{element}'))"
        )
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_names_the_clothing_model_and_hints_at_imagenet(tmp_path: Path) -> None:
    from service.settings import BUNDLED_MODELS

    repo = tmp_path / "repo"
    shutil.copytree(BUNDLED_MODELS / "fashion-mnist-xnor", repo / "fashion-mnist-xnor")
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg(320, 240))
    with _page(repo) as (browser, session):
        browser.wait_for(session, "document.body.dataset.models === 'ready'")
        assert _text(browser, session, "model-name") == "fashion-mnist-xnor"
        assert _text(browser, session, "model-version") == "v1"
        assert _text(browser, session, "task") == "Fashion-MNIST, 10 clothing classes"
        assert not _visible(browser, session, "model")  # one model: no selector
        assert _visible(browser, session, "hint")
        hint = _text(browser, session, "hint")
        assert "ImageNet" in hint and "xnornet pull resnet-e18" in hint
        # one line
        assert browser.evaluate(
            session,
            "(e => e.getClientRects().length === 1 && e.clientHeight < 40)(document.getElementById('hint'))",
        ), browser.evaluate(session, "document.getElementById('hint').clientHeight")
        _upload(browser, session, image)
        meta = _text(browser, session, "meta")
        _screenshot(browser, session, "page-fashion-mnist")
    assert meta.startswith("fashion-mnist-xnor v1 · Fashion-MNIST, 10 clothing classes · ")
    assert " ms (preprocess " in meta and "inference " in meta


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_selects_among_models_and_drops_the_hint_with_imagenet(tmp_path: Path) -> None:
    pytest.importorskip("h5py", reason="h5py is not installed (pip install 'xnornet[import]')")
    from service.settings import BUNDLED_MODELS
    from tests.training.test_pull import FILE, IMAGENET, catalog, entry
    from training import pull
    from training.larq_convert import CLASSES_FILE

    from ..importers import keras_ref as kr

    assert CLASSES_FILE.is_file()
    repo = tmp_path / "repo"
    shutil.copytree(BUNDLED_MODELS / "fashion-mnist-xnor", repo / "fashion-mnist-xnor")
    h5 = tmp_path / FILE
    kr.write_h5(h5, kr.resnet_e18(seed=31, width=0.125, size=64))
    cata = catalog(entry("https://mirror.example/" + FILE, h5.read_bytes()))
    pull.pull("resnet-e18", repo, catalog=cata, cache_dir=tmp_path / "cache", from_file=h5, stream=None)
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg(320, 240))
    with _page(repo) as (browser, session):
        browser.wait_for(session, "document.body.dataset.models === 'ready'")
        assert _visible(browser, session, "model") and not _visible(browser, session, "model-name")
        options = json.loads(
            browser.evaluate(
                session, "JSON.stringify([...document.getElementById('model').options].map(o => o.value))"
            )
        )
        assert options == ["fashion-mnist-xnor", "resnet-e18"]
        # the default model is preselected; an ImageNet model is served, so no hint
        assert browser.evaluate(session, "document.getElementById('model').value") == "fashion-mnist-xnor"
        assert _text(browser, session, "task") == "Fashion-MNIST, 10 clothing classes"
        assert not _visible(browser, session, "hint")
        browser.evaluate(
            session,
            "(s => { s.value = 'resnet-e18'; s.dispatchEvent(new Event('change')); })"
            "(document.getElementById('model'))",
        )
        assert _text(browser, session, "task") == "ImageNet, 1000 classes"
        assert _text(browser, session, "model-version") == "v1"
        _upload(browser, session, image)
        labels = json.loads(
            browser.evaluate(
                session,
                "JSON.stringify([...document.querySelectorAll('.row .label')].map(e => e.textContent))",
            )
        )
        meta = _text(browser, session, "meta")
        _screenshot(browser, session, "page-selector-imagenet")
    assert len(labels) == 5 and all(lab in IMAGENET for lab in labels)
    assert meta.startswith("resnet-e18 v1 · ImageNet, 1000 classes · ")
