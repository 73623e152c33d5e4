"""Larq Zoo's architectures as the weighted layers a weights file holds, and the pairing of a file's
layers with them.

Keras' `load_weights` pairs a file's weighted layers with the model's by position; this module
does the same and checks every shape, so a wrong or truncated file is named precisely. The
names (`ARCHES`, aliases, display names) are the one list the catalogue, the converter and the
command line accept. Kernels are HWIO (kh, kw, in, out), as Keras stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .keras_hdf5 import FileLayer, LarqImportError

ARCHES = ("xnornet", "binary-alexnet", "resnet-e18")
DISPLAY = {"xnornet": "XNORNet", "binary-alexnet": "BinaryAlexNet", "resnet-e18": "BinaryResNetE18"}
_ALIASES = {
    "xnornet": "xnornet",
    "binaryalexnet": "binary-alexnet",
    "alexnet": "binary-alexnet",
    "resnete18": "resnet-e18",
    "binaryresnete18": "resnet-e18",
    "resnete": "resnet-e18",
}
DEFAULT_NAMES = {
    "xnornet": "xnornet-larq",
    "binary-alexnet": "binary-alexnet-larq",
    "resnet-e18": "binary-resnet-e18-larq",
}


def canonical_arch(name: str) -> str:
    """'XNORNet', 'binary_alexnet', 'BinaryResNetE18', 'resnet-e18', ... -> a key of ARCHES."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    if key not in _ALIASES:
        raise LarqImportError(f"unknown Larq Zoo model {name!r}; expected one of {', '.join(ARCHES)}")
    return _ALIASES[key]


@dataclass(frozen=True)
class ArchConfig:
    """size: input side (224 for the releases); classes: outputs; width: channel multiplier
    (1.0 for the releases; smaller values exist for tests and benchmarks only)."""

    size: int = 224
    classes: int = 1000
    width: float = 1.0

    def ch(self, n: int) -> int:
        return max(1, round(n * self.width))


@dataclass(frozen=True)
class LayerSpec:
    """One weighted Keras layer: its kind and the accepted weight shapes (alternatives)."""

    kind: str  # conv | qconv | dense | qdense | bn
    what: str  # human description for messages
    shapes: tuple[tuple[tuple[int, ...], ...], ...]  # accepted shape lists (first = canonical)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def accepts(self, shapes: Sequence[tuple[int, ...]]) -> bool:
        return tuple(tuple(s) for s in shapes) in self.shapes


def _conv(kind: str, kh: int, kw: int, cin: int, cout: int, what: str, bias: bool = False) -> LayerSpec:
    s: tuple[tuple[int, ...], ...] = ((kh, kw, cin, cout),) + (((cout,),) if bias else ())
    return LayerSpec(kind, what, (s,))


def _bn(c: int, eps: float, scale: bool, center: bool, what: str) -> LayerSpec:
    n = 2 + int(scale) + int(center)
    return LayerSpec(
        "bn", f"{what} ({n} weights of {c})", (((c,),) * n,), {"eps": eps, "scale": scale, "center": center}
    )


def same_padding(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TF 'same': out = ceil(in / s), total = max((out - 1) s + k - in, 0), before = total // 2."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def valid_side(size: int, k: int, s: int) -> int:
    return (size - k) // s + 1


def layer_specs(arch: str, cfg: ArchConfig = ArchConfig()) -> list[LayerSpec]:
    arch = canonical_arch(arch)
    c = cfg.ch
    specs: list[LayerSpec] = []
    if arch == "xnornet":
        specs += [
            _conv("conv", 11, 11, 3, c(96), "Conv2D 96 11x11/4"),
            _bn(c(96), 1e-5, False, True, "BatchNormalization after conv 1"),
            _bn(c(96), 1e-4, False, True, "BatchNormalization after pool 1"),
        ]
        prev = c(96)
        for i, (n, k) in enumerate([(256, 5), (384, 3), (384, 3), (256, 3), (4096, 6)]):
            specs += [
                _conv("qconv", k, k, prev, c(n), f"QuantConv2D {n} {k}x{k} (binary conv {i + 2})"),
                _bn(c(n), 1e-4, False, True, f"BatchNormalization after binary conv {i + 2}"),
            ]
            prev = c(n)
        specs += [
            _conv("qconv", 1, 1, prev, c(4096), "QuantConv2D 4096 1x1 (binary conv 7)"),
            _bn(c(4096), 1e-3, False, True, "BatchNormalization after binary conv 7"),
            LayerSpec("dense", f"Dense {cfg.classes} without bias", (((c(4096), cfg.classes),),)),
        ]
    elif arch == "binary-alexnet":
        prev = 3
        for i, (n, k) in enumerate([(64, 11), (192, 5), (384, 3), (384, 3), (256, 3)]):
            specs += [
                _conv("qconv", k, k, prev, c(n), f"QuantConv2D {n} {k}x{k} (conv {i + 1})"),
                _bn(c(n), 1e-3, False, True, f"BatchNormalization after conv {i + 1}"),
            ]
            prev = c(n)
        side = _alexnet_final_side(cfg.size)
        fin = prev * side * side
        for i, n in enumerate([c(4096), c(4096), cfg.classes]):
            # v0.3.0: QuantConv2D 1x1 on the 1x1x9216 reshape; v0.2.x: QuantDense. Same values.
            specs += [
                LayerSpec(
                    "qdense",
                    f"QuantConv2D 1x1 / QuantDense {n} (dense {i + 1})",
                    (((1, 1, fin, n),), ((fin, n),)),
                ),
                _bn(n, 1e-3, False, True, f"BatchNormalization after dense {i + 1}"),
            ]
            fin = n
    else:  # resnet-e18
        specs += [
            _conv("conv", 7, 7, 3, c(64), "Conv2D 64 7x7/2 (stem)"),
            _bn(c(64), 1e-5, True, True, "BatchNormalization after the stem conv"),
            _bn(c(64), 1e-5, True, True, "BatchNormalization after the stem pool"),
        ]
        prev = c(64)
        for stage, filters in enumerate([64, 128, 256, 512]):
            for block in range(4):
                f = c(filters)
                where = f"stage {stage + 1} block {block + 1}"
                if prev != f:  # downsampling block: file order main conv, shortcut conv, main BN, shortcut BN
                    specs += [
                        _conv("qconv", 3, 3, prev, f, f"QuantConv2D {filters} 3x3 ({where})"),
                        _conv("conv", 1, 1, prev, f, f"shortcut Conv2D {filters} 1x1 ({where})"),
                        _bn(f, 1e-5, True, True, f"BatchNormalization ({where})"),
                        _bn(f, 1e-5, True, True, f"shortcut BatchNormalization ({where})"),
                    ]
                else:
                    specs += [
                        _conv("qconv", 3, 3, prev, f, f"QuantConv2D {filters} 3x3 ({where})"),
                        _bn(f, 1e-5, True, True, f"BatchNormalization ({where})"),
                    ]
                prev = f
        specs.append(
            LayerSpec("dense", f"Dense {cfg.classes} with bias", (((prev, cfg.classes), (cfg.classes,)),))
        )
    return specs


def _alexnet_final_side(size: int) -> int:
    s, _, _ = same_padding(size, 11, 4)
    s = valid_side(s, 3, 2)
    s = valid_side(s, 3, 2)  # conv 2 (same, stride 1) keeps the side; pool after it
    return valid_side(s, 3, 2)  # conv 5 then pool


def match_layers(
    arch: str, layers: list[FileLayer], cfg: ArchConfig = ArchConfig(), source: str = "the file"
) -> list[list[np.ndarray]]:
    """Pair the file's weighted layers with the architecture by position; check every shape."""
    arch = canonical_arch(arch)
    specs = layer_specs(arch, cfg)
    model = DISPLAY[arch]
    bad = next(
        (k for k, (spec, lay) in enumerate(zip(specs, layers, strict=False)) if not spec.accepts(lay.shapes)),
        None,
    )

    def mismatch(k: int) -> str:
        spec, lay = specs[k], layers[k]
        want = " or ".join(str(list(s)) for s in spec.shapes)
        return (
            f"weighted layer #{k} ({lay.name!r}) has weights of shapes {lay.shapes}; "
            f"{model} expects {spec.what} with shapes {want} there"
        )

    if len(layers) != len(specs):  # Keras' own first check: the number of layers with weights
        k = min(len(layers), len(specs))
        if bad is not None:
            detail = f"the first difference: {mismatch(bad)}"
        elif len(layers) < len(specs):
            detail = f"the first missing one is {specs[k].what}"
        else:
            detail = f"the first extra one is {layers[k].name!r}"
        raise LarqImportError(
            f"{source}: {len(layers)} layers with weights, {model} has {len(specs)}; {detail}"
        )
    if bad is not None:
        raise LarqImportError(f"{source}: {mismatch(bad)}. Is this a {model} file?")
    return [lay.weights for lay in layers]


def seeded_weights(arch: str, cfg: ArchConfig = ArchConfig(), seed: int = 0) -> list[list[np.ndarray]]:
    """Random weights in the file's layout, scaled so activations stay O(1) through the net
    (BN statistics roughly match the preceding layer's output scale)."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = []
    prev_scale = 1.0
    for spec in layer_specs(arch, cfg):
        shapes = spec.shapes[0]
        if spec.kind == "bn":
            n = shapes[0][0]
            arrs = []
            if spec.params["scale"]:
                arrs.append(rng.uniform(0.5, 1.5, n).astype(np.float32))
            if spec.params["center"]:
                arrs.append(rng.normal(0.0, 0.5, n).astype(np.float32))
            arrs.append((rng.normal(0.0, 0.3, n) * prev_scale).astype(np.float32))
            arrs.append((rng.uniform(0.5, 2.0, n) * prev_scale**2).astype(np.float32))
            out.append(arrs)
            prev_scale = 1.0
            continue
        kshape = shapes[0]
        fan_in = int(np.prod(kshape[:-1]))
        if spec.kind in ("qconv", "qdense"):
            w = rng.random(kshape, dtype=np.float32) * np.float32(3.0) - np.float32(1.5)
            prev_scale = float(np.sqrt(fan_in))  # sums of +-1 (times alpha ~ 0.67 for XNORNet)
        else:
            w = rng.standard_normal(kshape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
            prev_scale = 1.0
        arrs = [w] + [rng.normal(0.0, 0.1, s).astype(np.float32) for s in shapes[1:]]
        out.append(arrs)
    return out
