"""``dsp.phasor``: ``cis`` equals numpy's complex exponential; ``cis32`` is within float32
rounding of it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from dsp.phasor import cis, cis32

phases = arrays(np.float64, array_shapes(min_dims=0, max_dims=3, max_side=7), elements=st.floats(-50.0, 50.0))


@settings(max_examples=200, deadline=None)
@given(x=phases)
def test_cis_is_the_complex_exponential(x):
    got = cis(x)
    assert got.shape == np.shape(x) and got.dtype == np.complex128
    # numpy's exp(0 + jx) is cos x + j sin x: equal up to the last bit of its cos/sin (2 ulp)
    np.testing.assert_allclose(got, np.exp(1j * x), rtol=0, atol=4.5e-16)


@settings(max_examples=200, deadline=None)
@given(x=phases)
def test_cis32_is_within_float32_rounding(x):
    got = cis32(x)
    assert got.shape == np.shape(x) and got.dtype == np.complex64
    # x rounded to float32 moves the phase by up to |x| 2**-24, then cos/sin add a few float32 ulp
    limit = np.abs(x) * 2.0**-24 + 4 * 2.0**-24
    assert np.all(np.abs(got - np.exp(1j * x)) <= limit + 1e-12)
