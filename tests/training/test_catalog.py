"""The model catalogue: the shipped one follows its schema, bad ones are refused with every
problem named, and it loads from a path, a file:// URL and an http:// URL."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from training import catalog as cat
from training.converters import CONVERTERS
from training.larq_releases import releases

from .fileserver import serving


def test_the_shipped_catalogue_follows_the_schema() -> None:
    raw = json.loads(cat.SHIPPED.read_text(encoding="utf-8"))
    assert raw["schema"] == cat.SCHEMA
    c = cat.validate(raw, "shipped")
    assert c.names() == ["xnornet", "binary-alexnet", "resnet-e18"]
    for d in raw["models"]:
        # checked here on the raw JSON as well, independently of validate()
        for src in (d["source"], d["feature_extractor"]):
            url = urllib.parse.urlsplit(src["url"])
            assert url.scheme == "https" and url.hostname == "github.com", src["url"]
            assert re.fullmatch(r"/larq/zoo/releases/download/[\w.-]+/[\w.-]+\.h5", url.path), src["url"]
            assert src["release"] in url.path
            assert re.fullmatch(r"[0-9a-f]{64}", src["sha256"])
        assert d["importer"] in CONVERTERS
        assert d["architecture"] in CONVERTERS[d["importer"]].architectures
        assert d["task"] == {"dataset": "ImageNet", "classes": 1000, "summary": "ImageNet, 1000 classes"}
        assert 0 < d["accuracy"]["top1"] < d["accuracy"]["top5"] < 100
        assert d["license"] == "Apache-2.0"
    shas = [d[k]["sha256"] for d in raw["models"] for k in ("source", "feature_extractor")]
    assert len(set(shas)) == len(shas)


def test_the_larq_importer_reads_its_releases_from_the_catalogue() -> None:
    rel = releases()
    assert len(rel) == 6 and sum(r["include_top"] for r in rel) == 3
    e = cat.shipped().get("resnet-e18")
    top = next(r for r in rel if r["arch"] == "resnet-e18" and r["include_top"])
    assert (top["sha256"], top["top1"], top["file"], top["tag"]) == (
        e.source.sha256,
        e.accuracy and e.accuracy["top1"],
        "resnet_e_18_weights.h5",
        "resnet_e-v0.1.0",
    )


def test_a_bad_catalogue_is_refused_with_every_problem() -> None:
    good = json.loads(cat.SHIPPED.read_text(encoding="utf-8"))["models"][0]
    bad = [
        {**good, "name": "Bad Name"},
        {**good, "name": "a", "importer": "onnx"},
        {**good, "name": "b", "architecture": "vgg"},
        {**good, "name": "c", "source": {**good["source"], "sha256": "abc"}},
        {**good, "name": "d", "source": {**good["source"], "url": "ftp://host/x.h5"}},
        {**good, "name": "e", "source": {**good["source"], "url": "https:///x.h5"}},
        {**good, "name": "f", "colour": "red"},
        good,
        good,
    ]
    with pytest.raises(cat.CatalogError) as info:
        cat.validate({"schema": cat.SCHEMA, "models": bad})
    msg = str(info.value)
    for needle in (
        "models[0].name",
        "(a).importer: 'onnx' is not one of larq-zoo",
        "(b).architecture: 'vgg'",
        "(c).source.sha256: expected 64 lower-case hex digits",
        "(d).source.url: scheme 'ftp'",
        "(e).source.url: no host",
        "(f).colour: unknown field",
        "the name 'xnornet' appears twice",
    ):
        assert needle in msg, (needle, msg)
    with pytest.raises(cat.CatalogError, match="schema: expected"):
        cat.validate({"schema": "other/2", "models": []})
    with pytest.raises(cat.CatalogError, match="not valid JSON"):
        cat.parse(b"{", "x")


def test_unknown_names_get_close_suggestions() -> None:
    c = cat.shipped()
    with pytest.raises(cat.UnknownModel, match="did you mean 'resnet-e18'") as info:
        c.get("resnet18")
    assert info.value.suggestions == ["resnet-e18"]
    with pytest.raises(cat.UnknownModel, match=r"did you mean 'binary-alexnet'\?"):
        c.get("binary_alexnet")
    assert c.get("XNORNet").name == "xnornet"  # case does not matter
    with pytest.raises(cat.UnknownModel) as info:
        c.get("vgg16")
    assert info.value.suggestions == [] and "known: xnornet, binary-alexnet, resnet-e18" in str(info.value)


def test_loads_from_a_path_a_file_url_and_an_http_url(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_bytes(cat.SHIPPED.read_bytes())
    for source in (str(tmp_path / "catalog.json"), (tmp_path / "catalog.json").as_uri()):
        assert cat.load(source).names() == cat.shipped().names()
    with serving(tmp_path) as srv:
        assert cat.load(srv.url("catalog.json")).names() == cat.shipped().names()
        with pytest.raises(cat.CatalogError, match="HTTP 404"):
            cat.load(srv.url("nothing.json"))
    with pytest.raises(cat.CatalogError, match="cannot read the catalogue"):
        cat.load(str(tmp_path / "missing.json"))
