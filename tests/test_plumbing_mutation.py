"""Mutation check, session 14 (docs/MUTATION.md): the plumbing of ``dsp``: ``bands``, ``chunks``,
``sc16``, ``channel``, ``truth`` and ``results``.

These modules are reached by every receiver test, but only through what the receiver makes of
them; here each is checked against its docstring: the band names and orders, the chunk list's
views, copies and continuous index, the block check's exact bounds, the buffer pool's reuse rule,
the sc16 conversion's bits on each of its paths and its refusals, a channel's CFR against the
sum it is defined by, the ground truth's derived values and the results' defaults.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dsp import bands
from dsp.channel import Paths
from dsp.chunks import BufferPool, ChunkList, as_complex64, check_block, is_pairs
from dsp.results import BlockStats, GapEvent, PacketResult, RangingEpoch
from dsp.sc16 import BLOCK_SAMPLES, SC16_FULL_SCALE, SC16_SCALE, complex64_pairs_view, sc16_to_complex64
from dsp.truth import GroundTruth

C = 299_792_458.0


def reference(pairs: np.ndarray) -> np.ndarray:
    """The plain two-step conversion of the sc16 docstring (float32 throughout)."""
    p = np.asarray(pairs).astype(np.float32)
    return p[..., 0] * np.float32(1 / 32767) + 1j * (p[..., 1] * np.float32(1 / 32767))


def random_pairs(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, (*shape, 2)).astype(np.int16)


# ----- bands -------------------------------------------------------------------------------------
def test_band_names_and_orders():
    assert (bands.CENTRAL, bands.LOWER, bands.UPPER) == ("central", "lower", "upper")
    assert bands.BANDS == ("central", "lower", "upper")
    assert bands.SIDE_BANDS == ("lower", "upper")
    assert bands.RF_ORDER == ("lower", "central", "upper")


# ----- sc16 --------------------------------------------------------------------------------------
def test_sc16_constants():
    assert (
        SC16_FULL_SCALE == 32767.0 and SC16_SCALE == np.float32(1 / 32767) and SC16_SCALE.dtype == np.float32
    )
    assert BLOCK_SAMPLES == 65536


@pytest.mark.parametrize("layout", ["contiguous", "strided", "big_endian", "one_channel", "blocks"])
def test_sc16_conversion_is_the_two_step_conversion_bit_for_bit(layout):
    pairs = random_pairs((3, 1001))
    kw = {}
    if layout == "strided":
        pairs = random_pairs((3, 2002))[:, ::2]
    elif layout == "big_endian":
        pairs = pairs.astype(">i2")
    elif layout == "one_channel":
        pairs = pairs[1]
    elif layout == "blocks":
        pairs = random_pairs((3, 2002))[:, ::2]
        kw = {"block_samples": 7}  # 143 blocks, the last one short
    got = sc16_to_complex64(pairs, **kw)
    assert got.dtype == np.complex64 and got.shape == pairs.shape[:-1]
    want = reference(pairs).astype(np.complex64)
    np.testing.assert_array_equal(got.view(np.float32), want.view(np.float32))


def test_sc16_full_scale_and_extremes():
    pairs = np.array([[32767, -32767], [-32768, 0], [1, 0]], np.int16)
    got = sc16_to_complex64(pairs)
    assert got[0] == np.complex64(1 - 1j)
    assert got[1].real == np.float32(-32768) * np.float32(1 / 32767) and got[2].real == np.float32(1 / 32767)
    strided = np.repeat(pairs, 2, axis=0)[::2]
    np.testing.assert_array_equal(sc16_to_complex64(strided), got)


def test_sc16_writes_into_a_given_output_and_handles_no_samples():
    pairs = random_pairs((2, 50))
    out = np.full((2, 50), 9 + 9j, np.complex64)
    assert sc16_to_complex64(pairs, out=out) is out
    np.testing.assert_array_equal(out, reference(pairs).astype(np.complex64))
    # a strided input into the output: the numpy path, also in place
    out2 = np.zeros((2, 25), np.complex64)
    assert sc16_to_complex64(pairs[:, ::2], out=out2, block_samples=4) is out2
    np.testing.assert_array_equal(out2, out[:, ::2])
    empty = sc16_to_complex64(np.zeros((3, 0, 2), np.int16))
    assert empty.shape == (3, 0) and empty.dtype == np.complex64


def test_sc16_refusals_name_what_is_wrong():
    cases = [
        (np.zeros((4, 2), np.uint16), {}, "sc16 needs int16 [..., sample, 2], got uint16 (4, 2)"),
        (np.zeros((4, 2), np.int32), {}, "sc16 needs int16 [..., sample, 2], got int32 (4, 2)"),
        (np.zeros(2, np.int16), {}, "sc16 needs int16 [..., sample, 2], got shape (2,)"),
        (np.zeros((4, 3), np.int16), {}, "sc16 needs int16 [..., sample, 2], got shape (4, 3)"),
        (np.zeros((4, 2), np.int16), {"block_samples": 0}, "block_samples must be positive, got 0"),
        (
            np.zeros((4, 2), np.int16),
            {"out": np.zeros(5, np.complex64)},
            "output shape (5,) does not match pairs (4, 2) (less the last axis)",
        ),
    ]
    for pairs, kw, message in cases:
        with pytest.raises(ValueError) as exc:
            sc16_to_complex64(pairs, **kw)
        assert str(exc.value) == message
    assert sc16_to_complex64(np.zeros((4, 2), np.int16), block_samples=1).shape == (4,)


def test_complex64_pairs_view_is_a_view_or_refused():
    out = np.zeros((2, 5), np.complex64)
    v = complex64_pairs_view(out)
    assert v.shape == (2, 5, 2) and v.dtype == np.float32 and np.shares_memory(v, out)
    v[1, 3] = (2.0, -3.0)
    assert out[1, 3] == 2 - 3j
    assert complex64_pairs_view(np.zeros((4, 1), np.complex64)[::2]).shape == (2, 1, 2)  # one sample
    assert complex64_pairs_view(np.zeros((4, 3), np.complex64)[::2]).shape == (2, 3, 2)  # rows strided
    one = np.zeros((2, 4), np.complex64)[:, ::4]  # one sample a row, its stride 32 bytes: still one sample
    assert one.strides == (32, 32) and complex64_pairs_view(one).shape == (2, 1, 2)
    assert sc16_to_complex64(np.array([[[1, 2]], [[3, 4]]], np.int16), out=one) is one
    np.testing.assert_array_equal(
        one, reference(np.array([[[1, 2]], [[3, 4]]], np.int16)).astype(np.complex64)
    )
    bad = [
        (np.zeros(3, np.complex128), "output must be complex64, got complex128"),
        (np.zeros((), np.complex64), "output needs a contiguous sample axis, got shape () strides ()"),
        (
            np.zeros(6, np.complex64)[::2],
            "output needs a contiguous sample axis, got shape (3,) strides (16,)",
        ),
        (
            np.zeros(4, np.complex64)[::2],
            "output needs a contiguous sample axis, got shape (2,) strides (16,)",
        ),
    ]
    for arr, message in bad:
        with pytest.raises(ValueError) as exc:
            complex64_pairs_view(arr)
        assert str(exc.value) == message
    ro = np.zeros(3, np.complex64)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"^output array is read-only$"):
        complex64_pairs_view(ro)


# ----- chunks ------------------------------------------------------------------------------------
def test_is_pairs_and_as_complex64():
    assert is_pairs(np.zeros((3, 4, 2), np.int16)) and is_pairs(np.zeros((4, 2), ">i2"))
    for arr in (
        np.zeros((4, 2), np.uint16),
        np.zeros((4, 2), np.int32),
        np.zeros(2, np.int16),
        np.zeros((4, 3), np.int16),
    ):
        assert not is_pairs(arr)
    x = np.ones((2, 3), np.complex64)
    assert as_complex64(x) is x
    y = as_complex64(np.ones((2, 3), np.complex128) * (1 + 2j))
    assert y.dtype == np.complex64 and y.tolist() == [[1 + 2j] * 3] * 2
    pairs = random_pairs((3, 40))
    for p in (pairs, pairs[:, ::2], pairs[0]):
        got = as_complex64(p)
        np.testing.assert_array_equal(got, reference(p).astype(np.complex64))
        assert got.shape == p.shape[:-1]


def test_chunk_list_keeps_views_or_copies_as_documented():
    cl = ChunkList()
    assert (cl.index, cl.n_pending, cl.end) == (0, 0, 0)
    cl.push(np.zeros((3, 0), np.complex64))
    assert cl.chunks == []
    a = np.arange(12, dtype=np.complex64).reshape(3, 4)
    cl.push(a)
    assert cl.chunks[-1] is a
    b = np.arange(24, dtype=np.complex64).reshape(3, 8)[:, ::2]  # rows not contiguous
    cl.push(b)
    assert cl.chunks[-1] is not b and cl.chunks[-1].flags.c_contiguous and np.array_equal(cl.chunks[-1], b)
    c = np.ones((3, 2), np.complex128)
    cl.push(c)
    assert cl.chunks[-1].dtype == np.complex64
    p = random_pairs((3, 5))
    cl.push(p)
    assert cl.chunks[-1] is p
    for q in (
        p.astype(">i2"),
        random_pairs((3, 10))[:, ::2],
        np.asfortranarray(random_pairs((3, 5))),
    ):
        cl.push(q)
        kept = cl.chunks[-1]
        assert kept.dtype == np.int16 and kept.strides[1:] == (4, 2) and np.array_equal(kept, q)
    assert (cl.n_pending, cl.end) == (4 + 4 + 2 + 5 + 5 + 5 + 5, 30)


def test_chunk_list_take_skip_and_drop_keep_the_continuous_index():
    cl = ChunkList()
    x = np.arange(30, dtype=np.complex64).reshape(3, 10)
    for lo, hi in ((0, 4), (4, 5), (5, 10)):
        cl.push(x[:, lo:hi].copy())
    one = cl.take(5, 9)
    assert np.shares_memory(one, cl.chunks[2]) and np.array_equal(one, x[:, 5:9])
    np.testing.assert_array_equal(cl.take(2, 8), x[:, 2:8])
    np.testing.assert_array_equal(cl.take(0, 10), x)
    cl.drop_before(-3)
    assert (cl.index, cl.n_pending) == (0, 10)
    cl.drop_before(2)
    assert (cl.index, cl.n_pending, len(cl.chunks)) == (2, 8, 3)
    np.testing.assert_array_equal(cl.take(2, 10), x[:, 2:])
    cl.drop_before(5)
    assert (cl.index, cl.n_pending, len(cl.chunks)) == (5, 5, 1)
    np.testing.assert_array_equal(cl.take(5, 10), x[:, 5:])
    cl.drop_before(99)
    assert (cl.index, cl.n_pending, cl.chunks) == (10, 0, [])
    cl.push(x[:, :3].copy())
    cl.skip(7)
    assert (cl.index, cl.end, cl.chunks) == (20, 20, [])
    # int16 pairs stay pairs; mixed with complex64 they are converted
    cl.push(random_pairs((3, 4)))
    cl.push(random_pairs((3, 4), seed=2))
    both = cl.take(20, 28)
    assert both.dtype == np.int16 and both.shape == (3, 8, 2)
    cl.push(np.ones((3, 2), np.complex64))
    mixed = cl.take(26, 30)
    assert mixed.dtype == np.complex64
    np.testing.assert_array_equal(
        mixed[:, :2], reference(random_pairs((3, 4), seed=2)[:, 2:]).astype(np.complex64)
    )


def test_check_block_bounds():
    check_block(10, 1, 10, 1)
    check_block(10, 5, 0, 5)
    for start, count, first, available in ((9, 1, 10, 3), (10, 0, 10, 3), (10, 4, 10, 3), (10, -1, 10, 3)):
        with pytest.raises(ValueError) as exc:
            check_block(start, count, first, available)
        assert str(exc.value) == (
            f"cannot take {count} windows from sample {start}: the buffer holds {available} windows "
            f"there and starts at {first}"
        )


def test_buffer_pool_reuses_an_array_only_once_nobody_holds_it():
    with pytest.raises(ValueError, match=r"^capacity must be at least 1, got 0$"):
        BufferPool(0)
    assert BufferPool().capacity == 32 and len(BufferPool(1)) == 0
    BufferPool(1).take((1,))
    pool = BufferPool(2)
    a = pool.take((2, 3))
    assert a.dtype == np.complex64 and a.shape == (2, 3) and len(pool) == 1
    b = pool.take([2, 3])
    assert b is not a and len(pool) == 2  # a is still held
    b_id = id(b)
    view = b[:, 1:]
    del b
    c = pool.take((2, 3))  # a held, b held through its view: a new one, the oldest (a) forgotten
    assert [id(x) for x in pool._arrays] == [b_id, id(c)]
    del view
    d = pool.take((2, 3))  # b is free now
    assert id(d) == b_id and len(pool) == 2 and not any(x is a for x in pool._arrays)


def test_buffer_pool_hands_back_a_free_array_of_the_same_shape_and_dtype():
    pool = BufferPool(4)
    a = pool.take((4,))
    a_id = id(a)
    del a
    again = pool.take((4,))
    assert id(again) == a_id
    other = pool.take((4,), np.float32)
    assert id(other) != a_id and other.dtype == np.float32
    wide = pool.take((5,))
    assert wide.shape == (5,) and id(wide) != a_id and len(pool) == 3


# ----- channel -----------------------------------------------------------------------------------
def test_paths_validate_their_arrays():
    p = Paths([3.0, 7.5], [1.0, 0.5j])
    assert p.lengths_m.dtype == np.float64 and p.gains.dtype == np.complex128
    assert Paths(4.0, 2.0).lengths_m.shape == (1,) and len(Paths(4.0, 2.0)) == 1
    assert Paths([0.0], [0.0]).los_length_m == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.gains = np.ones(2)  # type: ignore[misc]
    bad = [
        (([1.0, 2.0], [1.0]), "Paths: lengths_m (2,) and gains (1,) must be equal, non-empty 1-D"),
        (([], []), "Paths: lengths_m (0,) and gains (0,) must be equal, non-empty 1-D"),
        (([[1.0]], [[1.0]]), "Paths: lengths_m (1, 1) and gains (1, 1) must be equal, non-empty 1-D"),
        (([-1e-300], [1.0]), "Paths: lengths_m must be finite and non-negative, got [-1.e-300]"),
        (([math.inf], [1.0]), "Paths: lengths_m must be finite and non-negative, got [inf]"),
        (([math.nan], [1.0]), "Paths: lengths_m must be finite and non-negative, got [nan]"),
        (([1.0], [complex(math.nan, 0)]), "Paths: gains must be finite"),
        (([1.0], [complex(0, math.inf)]), "Paths: gains must be finite"),
    ]
    for args, message in bad:
        with pytest.raises(ValueError) as exc:
            Paths(*args)
        assert str(exc.value) == message


def test_paths_cfr_is_its_defining_sum():
    p = Paths([12.5, 30.0, 31.7], [1.0, 0.3 - 0.2j, -0.1j])
    assert p.delays_s.tolist() == [d / C for d in (12.5, 30.0, 31.7)]
    assert p.los_length_m == 12.5 and len(p) == 3
    f = np.linspace(-12e6, 12e6, 7)
    F = 915e6
    want = [
        sum(a * np.exp(-2j * np.pi * (F + fk) * d / C) for d, a in zip(p.lengths_m, p.gains, strict=True))
        for fk in f
    ]
    np.testing.assert_allclose(p.cfr(f, F), want, rtol=0, atol=1e-9)
    assert p.cfr(f.reshape(7, 1), F).shape == (7, 1)


def test_compound_scaled_and_list_round_trip():
    a = Paths([1.0, 2.0], [1.0, 0.5])
    b = Paths([10.0, 20.0, 40.0], [1j, 2.0, -1.0])
    ab = a.compound(b)
    assert ab.lengths_m.tolist() == [11.0, 21.0, 41.0, 12.0, 22.0, 42.0]
    assert ab.gains.tolist() == [1j, 2.0, -1.0, 0.5j, 1.0, -0.5]
    s = a.scaled(2j)
    assert s.lengths_m.tolist() == [1.0, 2.0] and s.gains.tolist() == [2j, 1j]
    rows = b.to_list()
    assert rows == [[10.0, 0.0, 1.0], [20.0, 2.0, 0.0], [40.0, -1.0, 0.0]]
    assert all(type(v) is float for r in rows for v in r)
    back = Paths.from_list(rows)
    assert back.lengths_m.tolist() == b.lengths_m.tolist() and back.gains.tolist() == b.gains.tolist()
    assert Paths.from_list([1.0, 2.0, 3.0]).gains.tolist() == [2 + 3j]


# ----- truth -------------------------------------------------------------------------------------
def truth(**more) -> GroundTruth:
    base = dict(
        range_true_m=25.0,
        tx_rx_distance_m=20.0,
        tag_pos_m=(3.0, 4.0),
        sample_offset=100,
        lo_ppm=1.5,
        tag_clock_ppm=-2.0,
        cfo_hz={"central": 10.0, "upper": 12.0},
        snr_db={"central": 30.0, "upper": 5.0},
        phase_rad={"central": 0.1, "upper": 0.2},
        noise_var={"central": 1e-3, "upper": 1e-3},
        scale={"central": 1.0, "upper": 0.5},
        circuitry_delay_s={"central": 10e-9, "upper": 14e-9},
        cfr_propagation={"central": np.array([1.0, 2.0]), "upper": np.array([1j, 1.0])},
        cfr_circuitry={"central": np.array([2.0, 0.5]), "upper": np.array([1.0, -1.0])},
        tag_id=0xABCD,
        packet_start_sample=np.array([5, 50]),
        packet_bits=np.zeros((2, 125), np.uint8),
        tag_symbol_samples=15360.0,
    )
    base.update(more)
    return GroundTruth(**base)


def test_ground_truth_derived_values():
    t = truth()
    assert (
        t.gaps.shape == (0, 2)
        and t.gaps.dtype == np.int64
        and t.sample_clock_ppm == 0.0
        and t.impairments == {}
    )
    assert truth().gaps is not t.gaps and truth().impairments is not t.impairments
    assert t.first_harmonic("upper") == 2 / np.pi
    h = truth(impairments={"tag_first_harmonic": {"upper": [0.5, -0.25]}})
    assert h.first_harmonic("upper") == 0.5 - 0.25j and h.first_harmonic("lower") == 2 / np.pi
    assert t.illumination_delay_samples(1e6) == 100.0
    d = truth(sample_clock_ppm=2.0).illumination_delay_samples(np.array([0.0, 1e6]))
    assert d.tolist() == [100.0, 100.0 - 2.0]
    assert {b: v.tolist() for b, v in t.cfr.items()} == {"central": [2.0, 1.0], "upper": [1j, -1.0]}
    cal = t.calibration_distance_m
    assert cal["central"] == 0.0 and cal["upper"] == pytest.approx(4e-9 * C, rel=1e-12)


def test_ground_truth_scalars():
    s = truth(impairments={"k": 1}, sample_clock_ppm=0.5).scalars()
    assert s == {
        "range_true_m": 25.0, "tx_rx_distance_m": 20.0, "tag_pos_m": [3.0, 4.0], "sample_offset": 100,
        "lo_ppm": 1.5, "sample_clock_ppm": 0.5, "impairments": {"k": 1}, "tag_clock_ppm": -2.0,
        "cfo_hz": {"central": 10.0, "upper": 12.0}, "snr_db": {"central": 30.0, "upper": 5.0},
        "circuitry_delay_s": {"central": 10e-9, "upper": 14e-9}, "tag_id": 0xABCD, "packets": 2,
        "tag_symbol_samples": 15360.0,
    }  # fmt: skip
    assert truth(tag_pos_m=None).scalars()["tag_pos_m"] is None


# ----- results -----------------------------------------------------------------------------------
def test_result_defaults():
    p = PacketResult(0.5, 100.0, 7, np.zeros(125, np.uint8), True, 40.0, 12.0)
    assert (p.soft, p.bit_errors, p.truth_index) == (None, None, None)
    e = RangingEpoch(0.5, 10, {}, {}, {}, {}, {}, {}, {})
    assert e.range_std_m == {} and e.implausible == {} and e.job is None
    assert RangingEpoch(0.5, 10, {}, {}, {}, {}, {}, {}, {}).range_std_m is not e.range_std_m
    assert RangingEpoch(0.5, 10, {}, {}, {}, {}, {}, {}, {}).implausible is not e.implausible
    assert "job" not in repr(e) and e == dataclasses.replace(e, job="pending")
    b = BlockStats(0.1, 480, 3, {}, {}, {})
    assert (b.timing_drift_ppm, b.timing_drift_measured_ppm, b.timing_error_samples, b.timing_locked) == (
        None,
    ) * 4
    g = GapEvent(100, 5)
    assert (g.index, g.samples_lost) == (100, 5)
