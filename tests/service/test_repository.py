"""The repository: versions on disk, path confinement, validated load, swap, leases."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.repository import (
    InvalidName,
    LoadFailed,
    NotOnDisk,
    NotServed,
    OutsideRepository,
    Repository,
)

from .fakes import fake_info


class FakeModel:
    """Shaped like engine.Model; 'bad' files make it raise, 'nan' files give NaN outputs."""

    isa = "scalar"
    threads = 1

    def __init__(self, data: bytes) -> None:
        if data.startswith(b"bad"):
            raise ValueError("bad magic")
        self.nan = data.startswith(b"nan")
        self.info = fake_info(4, ("a", "b", "c"))

    def infer(self, x: Any) -> np.ndarray:
        out = np.zeros((len(x), 3), np.float32)
        return out * np.nan if self.nan else out


def fake_loader(data: bytes, source: str) -> FakeModel:
    return FakeModel(data)


def put(root: Path, name: str, version: int | str, data: bytes = b"good") -> Path:
    p = root / name / str(version) / "model.xnor"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    return r


def test_versions_and_highest(root: Path) -> None:
    for v in (1, 3, 20):
        put(root, "m", v)
    put(root, "m", "latest")  # not an integer: ignored
    (root / "m" / "7").mkdir()  # no model file: ignored
    repo = Repository(root, fake_loader)
    assert repo.names_on_disk() == ["m"]
    assert repo.versions_on_disk("m") == [1, 3, 20]
    assert repo.load("m").version == 20
    assert repo.load("m", 3).version == 3


def test_pinned_version_wins(root: Path) -> None:
    put(root, "m", 1)
    put(root, "m", 2)
    assert Repository(root, fake_loader, pinned={"m": 1}).load("m").version == 1


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "", "-x", "x" * 200, "a\x00b", "/etc", "~root"])
def test_bad_names_are_refused(root: Path, name: str) -> None:
    repo = Repository(root, fake_loader)
    with pytest.raises(InvalidName):
        repo.load(name)


def test_bad_versions_are_refused(root: Path) -> None:
    put(root, "m", 1)
    repo = Repository(root, fake_loader)
    for v in (-1, 10**12, True):
        with pytest.raises(InvalidName):
            repo.model_path("m", v)
    with pytest.raises(NotOnDisk):
        repo.load("m", 2)
    with pytest.raises(NotOnDisk):
        repo.load("nope")


def test_symlink_out_of_the_repository_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    put(outside, "m", 1)
    os.symlink(outside / "m", root / "m")  # the model directory leads out
    put(root, "n", 1)
    os.symlink(outside / "m" / "1" / "model.xnor", root / "n" / "1" / "evil.xnor")
    (root / "n" / "2").mkdir()
    os.symlink(outside / "m" / "1" / "model.xnor", root / "n" / "2" / "model.xnor")  # the file leads out
    repo = Repository(root, fake_loader)
    with pytest.raises(OutsideRepository):
        repo.model_path("m", 1)
    with pytest.raises(OutsideRepository):
        repo.load("n", 2)
    assert repo.versions_on_disk("n") == [1]
    assert "m" not in repo.names_on_disk()


def test_symlink_inside_the_repository_is_fine(root: Path) -> None:
    put(root, "m", 1)
    (root / "alias").mkdir()
    os.symlink(root / "m" / "1", root / "alias" / "5")
    assert Repository(root, fake_loader).load("alias").version == 5


def test_failed_load_keeps_the_old_version(root: Path) -> None:
    put(root, "m", 1)
    repo = Repository(root, fake_loader)
    repo.load("m")
    put(root, "m", 2, b"bad file")
    with pytest.raises(LoadFailed, match="rejected the file"):
        repo.load("m")
    put(root, "m", 3, b"nan file")
    with pytest.raises(LoadFailed, match="warm-up"):
        repo.load("m")
    assert repo.served()["m"].version == 1
    assert "version 3" in repo.last_error["m"]


def test_swap_keeps_leased_version_alive_until_released(root: Path) -> None:
    put(root, "m", 1)
    put(root, "m", 2, b"good 2")
    repo = Repository(root, fake_loader)
    v1 = repo.load("m", 1)
    lease = repo.acquire("m")
    v2 = repo.load("m", 2)
    assert repo.acquire("m").version is v2  # new requests get the new version
    assert lease.version is v1 and v1.retired and not v1.freed and v1.model is not None
    lease.release()
    lease.release()  # idempotent
    assert v1.freed and v1.model is None and v1.leases == 0
    assert not v2.freed


def test_unload(root: Path) -> None:
    put(root, "m", 1)
    repo = Repository(root, fake_loader)
    mv = repo.load("m")
    assert repo.unload("m") is mv and mv.freed
    with pytest.raises(NotServed):
        repo.acquire("m")
    assert repo.unload("m") is None


def test_describe_lists_disk_and_served(root: Path) -> None:
    put(root, "m", 1)
    put(root, "m", 2)
    repo = Repository(root, fake_loader)
    repo.load("m", 1)
    (d,) = repo.describe()
    assert [v["version"] for v in d["on_disk"]] == [1, 2]
    assert d["served"]["version"] == 1 and len(d["served"]["sha256"]) == 64


def test_real_engine_file(tmp_path: Path, engine_ready: None) -> None:
    import engine

    from .modelgen import write_corrupt, write_version

    root = tmp_path / "r"
    write_version(root, "m", 1)
    write_corrupt(root, "m", 2)
    repo = Repository(root, lambda data, src: engine.Model.from_bytes(data, threads=1), warmup_batch=4)
    with pytest.raises(LoadFailed, match=r"ChecksumError|checksum|crc"):
        repo.load("m")
    mv = repo.load("m", 1)
    assert mv.labels[0] == "T-shirt/top" and mv.spec.height == 28


def test_activation_limit_refuses_before_warm_up(tmp_path: Path, engine_ready: None) -> None:
    """A small file can declare big layers: its activations for a full batch are estimated from
    the file's shapes and checked against the limit before the warm-up allocates them."""
    import engine

    from .modelgen import tiny_model, write_version

    root = tmp_path / "r"
    write_version(root, "big", 1, tiny_model(size=512))  # 512x512 input: ~2.6 MiB per image
    data = (root / "big" / "1" / "model.xnor").read_bytes()
    info = engine.Model.from_bytes(data, threads=1).info
    # input 1x512x512, conv1 8x256x256, bn1 the same, bconv2 + relu 8x128x128 twice, flatten, fc
    expected = 512 * 512 + 2 * 8 * 256 * 256 + 3 * 8 * 128 * 128 + 10
    assert info.activation_bytes == 4 * expected
    assert len(data) < info.activation_bytes  # the file is smaller than one image's activations

    warmed: list[int] = []

    def loader(blob: bytes, src: str) -> Any:
        model = engine.Model.from_bytes(blob, threads=1)
        real_infer = model.infer

        def infer(x: Any) -> Any:
            warmed.append(len(x))
            return real_infer(x)

        model.infer = infer  # type: ignore[method-assign]
        return model

    batch = 8
    need_mib = info.activation_bytes * batch / 2**20
    tight = Repository(root, loader, warmup_batch=batch, max_activation_bytes=int(need_mib - 1) << 20)
    with pytest.raises(LoadFailed, match=r"activations for a batch of 8 need \d+ MiB, over the limit"):
        tight.load("big")
    assert warmed == []  # refused before any inference ran
    roomy = Repository(root, loader, warmup_batch=batch, max_activation_bytes=int(need_mib + 1) << 20)
    assert roomy.load("big").version == 1 and warmed == [1, batch]


def test_the_model_card_gives_the_task_and_a_bad_card_is_ignored(root: Path, tmp_path: Path) -> None:
    card = {"title": "t", "task": {"dataset": "ImageNet", "classes": 3, "summary": "ImageNet, 3 classes"}}
    put(root, "m", 1)
    (root / "m" / "1" / "model_card.json").write_text(json.dumps(card))
    repo = Repository(root, fake_loader)
    mv = repo.load("m")
    assert mv.card == card and mv.task == {
        "dataset": "ImageNet",
        "classes": 3,
        "summary": "ImageNet, 3 classes",
    }
    outside = tmp_path / "card.json"
    outside.write_text(json.dumps(card))
    for bad in (b"{not json", b"[1, 2]", b" " * (300 << 10) + b"{}", None):
        path = root / "m" / "1" / "model_card.json"
        path.unlink()
        if bad is None:
            path.symlink_to(outside)  # never followed
        else:
            path.write_bytes(bad)
        mv = repo.load("m")  # the model still loads
        assert mv.card == {} and mv.task == {"dataset": None, "classes": 3, "summary": "3 classes"}
