"""Reading the weights of a Keras 2 HDF5 file with h5py only (no TensorFlow).

The layout (Keras `save_weights`, and `save` which nests it under `model_weights`): root
attribute `layer_names` (every layer in model order, weightless ones included; a long list is
split into `layer_names0`, `layer_names1`, ...), one group per layer with attribute
`weight_names` (same chunking; empty for weightless layers), datasets at
`f[layer][weight_name]`. Strings are fixed-length bytes (old h5py) or variable-length str.
Newer Keras also writes an empty `top_level_model_weights` group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_WEIGHT_ELEMENTS = 1 << 28  # the largest real tensor (XNORNet's 6x6x256x4096 conv) has 37.7M


class LarqImportError(ValueError):
    """The file cannot be imported as the named Larq Zoo model (the message says why)."""


@dataclass
class FileLayer:
    name: str
    weight_names: list[str]
    weights: list[np.ndarray]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(d) for d in w.shape) for w in self.weights]


def _strings(value: Any) -> list[str]:
    """An attribute of names: fixed-length bytes or variable-length str, array or scalar."""
    if isinstance(value, bytes | str):
        value = [value]
    arr = np.asarray(value)
    if arr.size == 0:
        return []
    if arr.dtype.kind not in ("S", "U", "O"):
        raise LarqImportError(f"expected strings, found an array of {arr.dtype}")
    out = []
    for v in arr.reshape(-1).tolist():
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        if not isinstance(v, str):
            raise LarqImportError(f"expected a string, found {type(v).__name__}")
        out.append(v)
    return out


def _chunked_attr(attrs: Any, name: str) -> list[str] | None:
    """Keras' load_attributes_from_hdf5_group: `name`, or `name0`, `name1`, ... concatenated."""
    if name in attrs:
        return _strings(attrs[name])
    if f"{name}0" not in attrs:
        return None
    out: list[str] = []
    k = 0
    while f"{name}{k}" in attrs:
        out.extend(_strings(attrs[f"{name}{k}"]))
        k += 1
    return out


def _attr_text(attrs: Any, name: str) -> str | None:
    if name not in attrs:
        return None
    v = attrs[name]
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(-1)[0]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def read_keras_weights(path: str | os.PathLike[str]) -> tuple[list[FileLayer], dict[str, Any]]:
    """The layers that carry weights, in the file's model order, and the root metadata.

    Raises LarqImportError for anything that is not a readable Keras weights file."""
    try:
        import h5py
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise LarqImportError("reading Larq Zoo files needs h5py: pip install 'xnornet[import]'") from exc

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise LarqImportError(f"{path}: not a readable HDF5 file (truncated or not HDF5): {exc}") from None
    try:
        with fh:
            root: Any = fh
            names = _chunked_attr(root.attrs, "layer_names")
            if names is None and "model_weights" in root:  # a full-model save (model.save)
                root = root["model_weights"]
                names = _chunked_attr(root.attrs, "layer_names")
            if names is None:
                raise LarqImportError(f"{path}: no 'layer_names' attribute: not a Keras weights file")
            meta = {
                "keras_version": _attr_text(root.attrs, "keras_version")
                or _attr_text(fh.attrs, "keras_version"),
                "backend": _attr_text(root.attrs, "backend") or _attr_text(fh.attrs, "backend"),
                "nested": root is not fh,
            }
            if meta["backend"] not in (None, "tensorflow"):
                raise LarqImportError(
                    f"{path}: saved with the {meta['backend']!r} backend; only TensorFlow "
                    "(Larq) files are supported"
                )
            if "top_level_model_weights" in root:
                tl = _chunked_attr(root["top_level_model_weights"].attrs, "weight_names") or []
                if tl:
                    raise LarqImportError(f"{path}: unexpected top-level model weights {tl[:3]}")
            layers: list[FileLayer] = []
            for name in names:
                if name not in root:
                    raise LarqImportError(f"{path}: layer {name!r} is listed in layer_names but missing")
                group = root[name]
                wnames = _chunked_attr(group.attrs, "weight_names") or []
                if not wnames:
                    continue
                arrays = []
                for wn in wnames:
                    if wn not in group:
                        raise LarqImportError(f"{path}: layer {name!r} lacks its weight {wn!r}")
                    ds = group[wn]
                    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
                        raise LarqImportError(f"{path}: {name}/{wn} is not a float array")
                    if ds.size > MAX_WEIGHT_ELEMENTS:  # checked before reading: never allocate for a bad file
                        raise LarqImportError(f"{path}: {name}/{wn} has {ds.size} elements, too many")
                    arr = np.asarray(ds[()], dtype=np.float32)
                    if not np.isfinite(arr).all():
                        raise LarqImportError(f"{path}: {name}/{wn} holds NaN or infinite values")
                    arrays.append(arr)
                layers.append(FileLayer(name, wnames, arrays))
    except LarqImportError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise LarqImportError(f"{path}: cannot read the HDF5 file (truncated or corrupt?): {exc}") from None
    return layers, meta
