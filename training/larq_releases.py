"""The Larq Zoo release files the shipped catalogue (training/catalog.json) names: the `--list`
table, and recognizing a downloaded file by its sha256."""

from __future__ import annotations

from typing import Any

from .catalog import shipped
from .keras_hdf5 import LarqImportError
from .larq_arch import DISPLAY


def releases() -> list[dict[str, Any]]:
    """The Larq Zoo files the shipped catalogue names: each model's file and, where listed, its
    feature extractor (include_top False: no classifier, never importable as a classifier)."""
    out = []
    for e in shipped().entries:
        if e.importer != "larq-zoo":
            continue
        acc = e.accuracy or {}
        common = {"arch": e.architecture, "model": DISPLAY[e.architecture], "name": e.name}
        out.append(
            {
                **common,
                "tag": e.source.release,
                "file": e.source.file,
                "url": e.source.url,
                "sha256": e.source.sha256,
                "top1": acc.get("top1"),
                "top5": acc.get("top5"),
                "include_top": True,
            }
        )
        if e.feature_extractor is not None:
            fe = e.feature_extractor
            out.append(
                {
                    **common,
                    "tag": fe.release,
                    "file": fe.file,
                    "url": fe.url,
                    "sha256": fe.sha256,
                    "include_top": False,
                }
            )
    return out


def release_table() -> str:
    """The `--list` table: model, release tag / file, expected accuracy, sha256."""
    rows = [("model", "arch", "release / file", "top-1", "top-5", "sha256")]
    for r in releases():
        if not r.get("include_top", True):
            continue
        rows.append(
            (
                r["model"],
                r["arch"],
                f"{r['tag']} / {r['file']}",
                f"{r['top1']:.2f} %",
                f"{r['top5']:.2f} %",
                r["sha256"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(
        [
            *lines,
            "",
            "download, verify and install in one step: xnornet pull NAME (xnornet pull --list)",
            "or by hand: download the file, then xnornet import larq-zoo ARCH FILE -o OUT.xnor",
        ]
    )


def check_release(digest: str, arch: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the matching release of `arch`, a warning or None). A file that is another model's
    release, or a no-top file, is refused: it can never import as `arch`."""
    for r in releases():
        if r["sha256"] != digest:
            continue
        if r["arch"] != arch:
            raise LarqImportError(
                f"this file is the {r['model']} release {r['tag']}/{r['file']}, "
                f"not {DISPLAY[arch]}: run `xnornet import larq-zoo {r['arch']} ...`"
            )
        if not r.get("include_top", True):
            raise LarqImportError(
                f"this file is {r['tag']}/{r['file']}, the feature extractor without "
                "the classifier; download the weights file with the top (see --list)"
            )
        return r, None
    known = [r for r in releases() if r["arch"] == arch and r.get("include_top", True)]
    want = ", ".join(f"{r['tag']}/{r['file']}" for r in known)
    return None, (
        f"sha256 {digest} is not a known {DISPLAY[arch]} release ({want}); importing anyway "
        "(retrained weights of the same architecture are fine, but the published accuracy "
        "does not apply)"
    )
