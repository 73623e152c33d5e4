"""OpenVINO's own XNOR AlexNet: the CPU baseline `xnornet bench` compares against.

The network is the one OpenVINO runs binary layers with: each binary layer is a levels=2
FakeQuantize (the input's sign, which the CPU plugin turns into bit-packing) followed by
BinaryConvolution ("xnor-popcount") on 1-bit weights, then a per-channel scale and shift
(alpha and batchnorm). conv1 and fc8 are float convolutions, fc6 / fc7 binary convolutions
over the 6x6 / 1x1 maps, max-pools 3/2 after conv1, conv2 and conv5, softmax at the end:
the shape of the engine's AlexNet (benchmarks/architectures.py), with seeded weights.

OpenVINO is optional (`pip install ./benchmarks[openvino]`); `load()` returns None when it is
not installed and the benchmark says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .timing import median_seconds


def load() -> Any | None:
    try:
        import openvino
    except ImportError:
        return None
    return openvino


def build(ov: Any, batch: int, seed: int = 0) -> Any:
    """The XNOR AlexNet as an ov.Model for a fixed batch (227x227x3 input, 1000 classes)."""
    import openvino.opset1 as op
    import openvino.opset8 as op8

    rng = np.random.default_rng(seed)

    def const(a: Any) -> Any:
        return op.constant(np.asarray(a, dtype=np.float32))

    def channel(values: np.ndarray) -> Any:
        return const(values.reshape(1, -1, 1, 1))

    def float_conv(x: Any, cout: int, cin: int, k: int, stride: int = 1, relu: bool = True) -> Any:
        w = rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)
        y = op.convolution(x, const(w), [stride, stride], [0, 0], [0, 0], [1, 1])
        y = op.add(y, channel(rng.normal(0.0, 0.1, cout)))
        return op.relu(y) if relu else y

    def sign(x: Any) -> Any:
        # levels=2: x <= 0 -> -1, x > 0 -> +1 (the pattern the CPU plugin packs into bits)
        zero, one = const(np.zeros((1, 1, 1, 1))), const(np.ones((1, 1, 1, 1)))
        return op.fake_quantize(x, zero, zero, const(-np.ones((1, 1, 1, 1))), one, 2)

    def binary_conv(x: Any, cout: int, cin: int, k: int, pad: int = 0) -> Any:
        bits = rng.integers(0, 2, (cout, cin, k, k)).astype(np.uint8).reshape(-1)
        w = ov.op.Constant(ov.Type.u1, ov.Shape([cout, cin, k, k]), bits)
        y = op.binary_convolution(sign(x), w, [1, 1], [pad, pad], [pad, pad], [1, 1], "xnor-popcount", -1.0)
        y = op.multiply(y, channel(rng.uniform(0.5, 1.5, cout) / np.sqrt(cin * k * k)))
        return op.add(y, channel(rng.normal(0.0, 0.1, cout)))

    def pool(x: Any) -> Any:
        return op.max_pool(x, [2, 2], [0, 0], [0, 0], [3, 3])

    inp = op.parameter([batch, 3, 227, 227], np.float32, name="input")
    x = pool(float_conv(inp, 96, 3, 11, stride=4))
    x = pool(binary_conv(x, 256, 96, 5, pad=2))
    x = binary_conv(x, 384, 256, 3, pad=1)
    x = binary_conv(x, 384, 384, 3, pad=1)
    x = pool(binary_conv(x, 256, 384, 3, pad=1))
    x = binary_conv(x, 4096, 256, 6)  # fc6 over the 6x6 map
    x = binary_conv(x, 4096, 4096, 1)  # fc7
    x = float_conv(x, 1000, 4096, 1, relu=False)  # fc8
    x = op.reshape(x, op.constant(np.array([batch, 1000], dtype=np.int64)), False)
    return ov.Model([op8.softmax(x, 1)], [inp], "alexnet_xnor")


def _config(threads: int) -> dict[str, Any]:
    # f32: on CPUs with bf16 the plugin would otherwise pick bf16 activations (and fail to
    # feed BinaryConvolution); the engine's float layers are float32 too.
    return {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }


def ms_per_image(ov: Any, batch: int, threads: int, repeat: int, warmup: int) -> float:
    """Median ms per image of one synchronous inference on `threads` CPU threads."""
    compiled = ov.Core().compile_model(build(ov, batch), "CPU", _config(threads))
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((batch, 3, 227, 227)).astype(np.float32)
    return 1e3 * median_seconds(lambda: request.infer({0: x}), repeat, warmup) / batch


def runtime_layer_types(ov: Any) -> dict[str, int]:
    """How many of each layer type the CPU plugin runs (to show BinaryConvolution is used)."""
    compiled = ov.Core().compile_model(build(ov, 1), "CPU", _config(1))
    kinds: dict[str, int] = {}
    for node in compiled.get_runtime_model().get_ops():
        rt = node.get_rt_info()
        kind = rt["layerType"].astype(str) if "layerType" in rt else node.get_type_name()
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
