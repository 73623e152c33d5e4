"""`xnornet pull` against a loopback HTTP server holding a synthetic file of the exact Larq
release layout (tests/importers/keras_ref.py writes it), behind a test catalogue.

The synthetic weights are random: these tests check the download, verification, conversion and
installation, never accuracy (their catalogue entry says so in its title)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("h5py", reason="h5py is not installed (pip install 'xnornet[import]')")

from training import catalog as cat
from training import pull as pl
from training.larq_convert import CLASSES_FILE

from ..importers import keras_ref as kr
from .fileserver import FileServer, closed_port, serving

ROOT = Path(__file__).resolve().parents[2]
FILE = "resnet_e_18_weights.h5"
IMAGENET = [ln.strip() for ln in CLASSES_FILE.read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A narrow BinaryResNetE18 (width 1/8, 64x64 input, 1000 classes) in the release layout."""
    root = tmp_path_factory.mktemp("files")
    kr.write_h5(root / FILE, kr.resnet_e18(seed=21, width=0.125, size=64), strings="str", top_level=True)
    kr.write_h5(root / "xnornet_weights.h5", kr.resnet_e18(seed=22, width=0.125, size=64))
    return root


@pytest.fixture
def server(files: Path) -> Any:
    with serving(files) as srv:
        yield srv


def entry(url: str, data: bytes, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "resnet-e18",
        "title": "synthetic random weights in the BinaryResNetE18 release layout (tests only)",
        "task": {"dataset": "ImageNet", "classes": 1000, "summary": "ImageNet, 1000 classes"},
        "importer": "larq-zoo",
        "architecture": "resnet-e18",
        "source": {
            "url": url,
            "release": "test",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        "license": "Apache-2.0",
        "accuracy": {"dataset": "none (random weights)", "top1": None, "top5": None, "by": "nobody"},
        "input_size": 64,
        "width": 0.125,
    }
    d.update(over)
    return d


def catalog(*entries: dict[str, Any]) -> cat.Catalog:
    return cat.validate({"schema": cat.SCHEMA, "models": list(entries)}, "test")


def test_catalog(srv: FileServer, files: Path, **over: Any) -> cat.Catalog:
    return catalog(entry(srv.url(FILE), (files / FILE).read_bytes(), **over))


test_catalog.__test__ = False  # type: ignore[attr-defined]


def do_pull(cata: cat.Catalog, repo: Path, cache: Path, **kw: Any) -> tuple[pl.PullResult, str]:
    out = io.StringIO()
    kw.setdefault("backoff", 0.0)
    res = pl.pull("resnet-e18", repo, catalog=cata, cache_dir=cache, stream=out, **kw)
    return res, out.getvalue()


def refused(cata: cat.Catalog, repo: Path, cache: Path, match: str, **kw: Any) -> str:
    with pytest.raises(pl.PullError, match=match) as info:
        do_pull(cata, repo, cache, **kw)
    assert not repo.exists() or not any(repo.rglob("*")), "something was left in the repository"
    return str(info.value)


def image() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------


def test_pull_installs_a_version_that_a_server_answers_with_imagenet_names(
    server: FileServer, files: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    repo, cache = tmp_path / "repo", tmp_path / "cache"
    res, log = do_pull(test_catalog(server, files), repo, cache)
    assert res.installed and res.version == 1
    vdir = repo / "resnet-e18" / "1"
    assert sorted(p.name for p in vdir.iterdir()) == ["model.xnor", "model_card.json"]
    assert [p.name for p in (repo / "resnet-e18").iterdir()] == ["1"]  # no staging left
    card = json.loads((vdir / "model_card.json").read_text())
    src = (files / FILE).read_bytes()
    assert card["source"]["sha256"] == hashlib.sha256(src).hexdigest()
    assert card["converted"]["sha256"] == hashlib.sha256((vdir / "model.xnor").read_bytes()).hexdigest()
    assert card["task"]["summary"] == "ImageNet, 1000 classes" and card["license"] == "Apache-2.0"
    assert "central crop" in card["preprocessing"] and card["importer"] == "larq-zoo"
    assert "100%" in log
    # the same pull again installs nothing new
    again, _ = do_pull(test_catalog(server, files), repo, cache)
    assert not again.installed and again.version == 1
    assert sorted(p.name for p in (repo / "resnet-e18").iterdir()) == ["1"]

    app = create_app(Settings(repository=repo, models=["resnet-e18"], engine_threads=1))
    with TestClient(app) as client:
        r = client.post("/v1/classify", content=image(), headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == {"name": "resnet-e18", "version": 1, "sha256": card["converted"]["sha256"]}
        labels = [p["label"] for p in body["predictions"]]
        assert len(labels) == 5 and all(lab in IMAGENET for lab in labels)
        listed = client.get("/v1/models").json()
        assert listed["default_model"] == "resnet-e18"
        assert listed["models"][0]["task"] == {
            "dataset": "ImageNet",
            "classes": 1000,
            "summary": "ImageNet, 1000 classes",
        }


def test_a_running_server_picks_up_a_pulled_model_by_polling(
    server: FileServer, files: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import BUNDLED_MODELS, Settings

    repo = tmp_path / "repo"
    shutil.copytree(BUNDLED_MODELS / "fashion-mnist-xnor", repo / "fashion-mnist-xnor")
    app = create_app(Settings(repository=repo, poll_seconds=0.1, engine_threads=1))
    with TestClient(app) as client:
        assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["fashion-mnist-xnor"]
        do_pull(test_catalog(server, files), repo, tmp_path / "cache")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            names = [m["name"] for m in client.get("/v1/models").json()["models"]]
            if "resnet-e18" in names:
                break
            time.sleep(0.1)
        assert names == ["fashion-mnist-xnor", "resnet-e18"]
        r = client.post("/v1/models/resnet-e18/classify", content=image())
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] in IMAGENET


def test_resume_after_a_cut_connection(server: FileServer, files: Path, tmp_path: Path) -> None:
    size = (files / FILE).stat().st_size
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    server.cut_after, server.cuts = size // 2, 1
    # no retries: the run fails, keeps the partial file and says how to resume
    msg = refused(test_catalog(server, files), repo, cache, "resume", retries=0)
    assert "connection" in msg
    parts = list((cache / "downloads").glob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < size
    # the next run resumes where the last stopped
    have = parts[0].stat().st_size
    res, log = do_pull(test_catalog(server, files), repo, cache)
    assert res.installed and res.version == 1
    assert server.requests[-1] == (f"/{FILE}", f"bytes={have}-")
    assert "resuming" in log
    assert not list((cache / "downloads").glob("*.part"))


def test_a_cut_is_retried_within_one_run(server: FileServer, files: Path, tmp_path: Path) -> None:
    server.cut_after, server.cuts = 50_000, 2
    res, _ = do_pull(test_catalog(server, files), tmp_path / "repo", tmp_path / "cache", retries=3)
    assert res.installed
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and ranges[1] == "bytes=50000-" and ranges[2] == "bytes=100000-"


def test_checksum_mismatch_installs_nothing_and_keeps_no_download(
    server: FileServer, files: Path, tmp_path: Path
) -> None:
    data = (files / FILE).read_bytes()
    bad = entry(server.url(FILE), data)
    bad["source"]["sha256"] = hashlib.sha256(b"another file").hexdigest()
    cache = tmp_path / "cache"
    msg = refused(catalog(bad), tmp_path / "repo", cache, "sha256")
    assert "nothing was installed" in msg
    assert not [p for p in (cache / "downloads").iterdir() if not p.name.endswith(".lock")]


def test_http_404(server: FileServer, files: Path, tmp_path: Path) -> None:
    server.missing.add(f"/{FILE}")
    cache = tmp_path / "cache"
    refused(test_catalog(server, files), tmp_path / "repo", cache, "HTTP 404")
    assert not list((cache / "downloads").glob("*.part"))


def test_connection_refused_says_how_to_do_it_by_hand(files: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/{FILE}"
    cata = catalog(entry(url, (files / FILE).read_bytes()))
    msg = refused(cata, tmp_path / "repo", tmp_path / "cache", "cannot reach 127.0.0.1")
    assert url in msg and f"xnornet pull resnet-e18 --from {FILE}" in msg
    # ... and that command works
    res, _ = do_pull(cata, tmp_path / "repo", tmp_path / "cache", from_file=files / FILE)
    assert res.installed and (tmp_path / "repo" / "resnet-e18" / "1" / "model.xnor").is_file()


def test_a_truncated_file_given_by_hand_is_refused(files: Path, tmp_path: Path) -> None:
    data = (files / FILE).read_bytes()
    cut = tmp_path / FILE
    cut.write_bytes(data[: len(data) // 3])
    cata = catalog(entry("https://example.org/" + FILE, data))
    refused(cata, tmp_path / "repo", tmp_path / "cache", "truncated, or another release", from_file=cut)


def test_a_slow_server_shows_progress(server: FileServer, files: Path, tmp_path: Path) -> None:
    server.delay = 0.03  # ~40 blocks of 16 KiB: over a second
    _, log = do_pull(test_catalog(server, files), tmp_path / "repo", tmp_path / "cache", interval=0.2)
    lines = [ln for ln in log.splitlines() if ln.startswith(f"{FILE}:") and "ETA" in ln]
    assert len(lines) >= 3, log
    size_mb = f"{(files / FILE).stat().st_size / 1e6:.1f} MB"
    assert all(size_mb in ln and "/s" in ln and "%" in ln for ln in lines)


def test_wrong_architecture_installs_nothing(server: FileServer, files: Path, tmp_path: Path) -> None:
    # a BinaryResNetE18 file behind an entry that says XNORNet
    data = (files / "xnornet_weights.h5").read_bytes()
    e = entry(server.url("xnornet_weights.h5"), data, name="xnornet", architecture="xnornet")
    cache = tmp_path / "cache"
    with pytest.raises(pl.PullError, match=r"does not convert as xnornet.*XNORNet expects"):
        pl.pull("xnornet", tmp_path / "repo", catalog=catalog(e), cache_dir=cache, stream=None)
    assert not (tmp_path / "repo").exists()
    assert not [p for p in (cache / "downloads").iterdir() if not p.name.endswith(".lock")]


def test_unwritable_repository_costs_no_download(server: FileServer, files: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(pl.PullError, match="cannot write to the repository"):
        pl.pull(
            "resnet-e18",
            tmp_path / "afile" / "repo",
            catalog=test_catalog(server, files),
            cache_dir=tmp_path / "cache",
            stream=None,
        )
    assert server.requests == []


def test_full_disk_while_installing(
    server: FileServer, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pl, "_write_synced", full)
    refused(
        test_catalog(server, files), tmp_path / "repo", tmp_path / "cache", "no space left in the repository"
    )


def test_missing_h5py_is_named_before_any_download(
    server: FileServer, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "h5py" else real(n, *a))
    refused(test_catalog(server, files), tmp_path / "repo", tmp_path / "cache", r"h5py.*xnornet\[import\]")
    assert server.requests == []


def test_http_proxy_and_no_proxy_are_honoured(
    server: FileServer, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://models.mirror.invalid/{FILE}"  # resolvable only through the proxy
    cata = catalog(entry(url, (files / FILE).read_bytes()))
    monkeypatch.setenv("HTTP_PROXY", server.base)
    monkeypatch.setenv("NO_PROXY", "models.mirror.invalid")
    refused(cata, tmp_path / "repo", tmp_path / "cache", "cannot reach models.mirror.invalid")
    monkeypatch.setenv("NO_PROXY", "")
    res, _ = do_pull(cata, tmp_path / "repo", tmp_path / "cache")
    assert res.installed and server.requests[-1][0] == url  # the proxy saw the absolute URL


def test_a_size_contradicting_the_catalogue_is_refused_before_downloading(
    server: FileServer, files: Path, tmp_path: Path
) -> None:
    data = (files / FILE).read_bytes()
    e = entry(server.url(FILE), data)
    e["source"]["size"] = len(data) + 1
    cache = tmp_path / "cache"
    refused(
        catalog(e), tmp_path / "repo", cache, f"the server's file has {len(data)} bytes, the catalogue says"
    )
    assert not list((cache / "downloads").glob("*.part"))


def test_full_disk_while_downloading_keeps_nothing(
    server: FileServer, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins
    import errno

    from training import fetch

    class Full:
        """A file that takes 100 kB, then reports ENOSPC."""

        def __init__(self, path: Path, mode: str) -> None:
            self.fh = builtins.open(path, mode)  # noqa: SIM115 - closed by __exit__
            self.room = 100_000

        def write(self, block: bytes) -> int:
            if len(block) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(block)
            return int(self.fh.write(block))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    monkeypatch.setattr(fetch, "open", Full, raising=False)
    cache = tmp_path / "cache"
    msg = refused(test_catalog(server, files), tmp_path / "repo", cache, "no space left for the download")
    assert "resume" not in msg
    assert not list((cache / "downloads").glob("*.part"))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_a_ca_bundle_in_ssl_cert_file(
    files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with serving(files, tls=(cert, key)) as srv:
        cata = test_catalog(srv, files)
        assert cata.entries[0].source.url.startswith("https://127.0.0.1:")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        refused(cata, tmp_path / "repo", tmp_path / "cache", "certificate verify failed")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the company's CA bundle
        res, _ = do_pull(cata, tmp_path / "repo", tmp_path / "cache")
    assert res.installed


# ---------------------------------------------------------------------------------------
# Two pulls at once, as separate processes (the locks are flock on files)


def _cli(catalog_file: Path, repo: Path, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "XNORNET_CATALOG": str(catalog_file), "XNORNET_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "xnornet", "pull", "resnet-e18", "--repository", str(repo)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pair(
    server: FileServer, catalog_file: Path, repos: tuple[Path, Path], cache: Path
) -> list[tuple[str, str]]:
    """Start a pull; once its download is under way (slowly), start the second one."""
    first = _cli(catalog_file, repos[0], cache)
    deadline = time.monotonic() + 60
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    second = _cli(catalog_file, repos[1], cache)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert "waiting for another xnornet pull" in outs[1][1], outs  # they did overlap
    return outs


def test_two_concurrent_pulls_do_not_corrupt_each_other(
    server: FileServer, files: Path, tmp_path: Path
) -> None:
    server.delay = 0.08  # ~69 blocks: the first download takes ~5 s, longer than a process start
    data = (files / FILE).read_bytes()
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"schema": cat.SCHEMA, "models": [entry(server.url(FILE), data)]}))
    # same repository: one version, both succeed, one download
    repo = tmp_path / "repo"
    outs = _pair(server, catalog_file, (repo, repo), tmp_path / "cache")
    assert sorted(p.name for p in (repo / "resnet-e18").iterdir()) == ["1"]
    assert "installed as version 1" in outs[0][0] and "already installed as version 1" in outs[1][0]
    assert len(server.requests) == 1
    # two repositories, one cache: one download (the cache entry's lock), two complete installs
    server.requests.clear()
    _pair(server, catalog_file, (tmp_path / "repo0", tmp_path / "repo1"), tmp_path / "shared")
    assert len(server.requests) == 1
    sums = {
        hashlib.sha256((tmp_path / f"repo{i}/resnet-e18/1/model.xnor").read_bytes()).hexdigest()
        for i in (0, 1)
    }
    assert sums == {hashlib.sha256((repo / "resnet-e18/1/model.xnor").read_bytes()).hexdigest()}


# ---------------------------------------------------------------------------------------
# Command line


def test_cli_unknown_name_suggests_and_list_shows_pulled(
    server: FileServer, files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xnornet.cli import main

    catalog_file = tmp_path / "catalog.json"
    data = (files / FILE).read_bytes()
    catalog_file.write_text(json.dumps({"schema": cat.SCHEMA, "models": [entry(server.url(FILE), data)]}))
    base = [
        "--catalog",
        str(catalog_file),
        "--repository",
        str(tmp_path / "repo"),
        "--cache",
        str(tmp_path / "c"),
    ]
    assert main(["pull", "resnet18", *base]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'resnet-e18'" in err
    assert main(["pull", "--list", *base]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("resnet-e18"))
    assert row.split()[-2] == "no"
    assert main(["pull", "resnet-e18", *base]) == 0
    out = capsys.readouterr().out
    assert (
        "installed as version 1" in out
        and f"xnornet serve --repository {tmp_path / 'repo'} --model resnet-e18" in out
    )
    assert main(["pull", "--list", *base]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("resnet-e18"))
    assert "version 1" in row and "ImageNet, 1000 classes" in row
    # `xnornet info` shows the model card
    assert main(["info", str(tmp_path / "repo" / "resnet-e18" / "1" / "model.xnor")]) == 0
    info = capsys.readouterr().out
    assert (
        "ImageNet, 1000 classes" in info and hashlib.sha256(data).hexdigest() in info and "Apache-2.0" in info
    )
