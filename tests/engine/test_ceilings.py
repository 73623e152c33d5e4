"""xnor_measure_ceilings: every usable ISA measures positive compute and bandwidth ceilings."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgumentError
from engine.model import isa_supported, measure_ceilings


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_ceilings_are_positive(isa: str) -> None:
    if not isa_supported(isa):
        pytest.skip(f"{isa} not supported here")
    c = measure_ceilings(isa)
    assert set(c) == {"fma_gops", "int8_gops", "popcount_gops", "mem_read_gbps", "cache_read_gbps"}
    assert c["fma_gops"] > 0 and c["popcount_gops"] > 0
    assert c["mem_read_gbps"] > 0 and c["cache_read_gbps"] > 0
    if isa != "avx512":
        assert c["int8_gops"] == 0  # the int8 ceiling is measured with AVX-512 VNNI only
    else:
        assert c["int8_gops"] >= 0


def test_unknown_isa_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        measure_ceilings("neon")
