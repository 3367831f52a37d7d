"""Ingest: the blocked sc16 conversion, the numpy fletcher32, slab reads of captures."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captures import ingest
from captures.emulated import channels_for
from captures.format import CHUNK_SAMPLES
from captures.ingest import SlabReader, fletcher32, fletcher32_parts
from captures.writer import CaptureWriter
from dsp import sc16
from dsp.sc16 import complex64_pairs_view, sc16_to_complex64

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def plain_conversion(pairs: np.ndarray) -> np.ndarray:
    """The reference: int16 -> float32 array, viewed as complex64, scaled in float32."""
    out = pairs.astype(np.float32).view(np.complex64)[..., 0]
    return out * np.float32(1.0 / 32767.0)


def _pairs(rng: np.random.Generator, channels: int, n: int) -> np.ndarray:
    p = rng.integers(-32768, 32768, (channels, n, 2), dtype=np.int16)
    if n:  # the extremes, always
        p[0, 0] = (-32768, 32767)
    return p


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint64)


# ----- conversion ---------------------------------------------------------------------------------
@FAST
@given(
    channels=st.integers(1, 3),
    n=st.integers(0, 3000),
    block=st.integers(1, 5000),
    in_off=st.integers(0, 7),
    out_off=st.integers(0, 7),
    seed=st.integers(0, 2**32 - 1),
)
def test_blocked_conversion_equals_the_plain_conversion_bit_for_bit(
    channels, n, block, in_off, out_off, seed
):
    """Any length, block size and (odd) offset into larger input and output arrays; samples of
    the output outside the target slice are untouched."""
    rng = np.random.default_rng(seed)
    big_in = _pairs(rng, channels, n + in_off + 3)
    pairs = big_in[:, in_off : in_off + n]
    big_out = np.full((channels, n + out_off + 5), 7 + 7j, np.complex64)
    got = sc16_to_complex64(pairs, big_out[:, out_off : out_off + n], block_samples=block)
    assert np.shares_memory(got, big_out) or n == 0
    np.testing.assert_array_equal(_bits(big_out[:, out_off : out_off + n]), _bits(plain_conversion(pairs)))
    assert np.all(big_out[:, :out_off] == 7 + 7j) and np.all(big_out[:, out_off + n :] == 7 + 7j)
    fresh = sc16_to_complex64(pairs, block_samples=block)
    assert fresh.dtype == np.complex64 and fresh.shape == (channels, n)
    np.testing.assert_array_equal(_bits(fresh), _bits(plain_conversion(pairs)))


def test_conversion_of_one_channel_and_of_a_byte_swapped_input():
    rng = np.random.default_rng(3)
    p = _pairs(rng, 1, 1000)[0]  # [sample, 2]
    np.testing.assert_array_equal(_bits(sc16_to_complex64(p)), _bits(plain_conversion(p)))
    be = p.astype(">i2")
    np.testing.assert_array_equal(_bits(sc16_to_complex64(be, block_samples=77)), _bits(plain_conversion(p)))


@pytest.mark.parametrize("layout", ["contiguous", "column slice", "byte-swapped", "strided input"])
def test_compiled_and_numpy_conversions_give_the_same_bits(layout):
    """The compiled loop (contiguous channels, native int16) and the numpy blocks (any other
    layout) against the plain conversion, over every int16 value in I and in Q."""
    values = np.arange(-32768, 32768, dtype=np.int16)
    p = np.stack([values, values[::-1]], axis=-1)[None]  # [1, 65536, 2]
    out = np.zeros((1, 70000), np.complex64)
    if layout == "column slice":
        got = sc16_to_complex64(p, out[:, 7 : 7 + 65536])
    elif layout == "byte-swapped":
        got = sc16_to_complex64(p.astype(">i2"))
    elif layout == "strided input":
        wide = np.zeros((1, 65536, 4), np.int16)
        wide[..., :2] = p
        got = sc16_to_complex64(wide[..., :2])  # samples 8 bytes apart
    else:
        got = sc16_to_complex64(p)
    np.testing.assert_array_equal(_bits(got), _bits(plain_conversion(p)))
    if layout in ("contiguous", "column slice"):  # these take the compiled loop, the others not
        assert sc16._compiled_fits(p, complex64_pairs_view(got))
    else:
        assert not sc16._compiled_fits(
            p.astype(">i2") if layout == "byte-swapped" else wide[..., :2], complex64_pairs_view(got)
        )


def test_conversion_refuses_what_it_cannot_write_in_place():
    p = np.zeros((2, 10, 2), np.int16)
    with pytest.raises(ValueError, match="int16"):
        sc16_to_complex64(p.astype(np.int32))
    with pytest.raises(ValueError, match="shape"):
        sc16_to_complex64(np.zeros((2, 10, 3), np.int16))
    with pytest.raises(ValueError, match="contiguous sample axis"):
        sc16_to_complex64(p[:, ::2], np.zeros((2, 10), np.complex64)[:, ::2])
    with pytest.raises(ValueError, match="does not match"):
        sc16_to_complex64(p, np.zeros((2, 11), np.complex64))
    with pytest.raises(ValueError, match="complex64"):
        sc16_to_complex64(p, np.zeros((2, 10), np.complex128))


def test_pairs_view_is_a_view():
    out = np.zeros((3, 8, 5), np.complex64)[:, 2]  # strided channel axis, contiguous samples
    v = complex64_pairs_view(out)
    v[1, 4] = (0.5, -0.25)
    assert out[1, 4] == 0.5 - 0.25j and v.shape == (3, 5, 2)


# ----- fletcher32 -----------------------------------------------------------------------------------
def _hdf5_checksum(tmp_path, words: np.ndarray) -> tuple[np.ndarray, int]:
    """The chunk bytes and the fletcher32 HDF5 stored for ``words`` (int16, one chunk)."""
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("d", data=words, chunks=words.shape, fletcher32=True)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        _, raw = f["d"].id.read_direct_chunk((0,) * words.ndim)
    b = np.frombuffer(raw, np.uint8)
    return b[:-4].copy(), int(b[-4:].view("<u4")[0])


WORDS = st.one_of(
    st.integers(1, 300_000).map(lambda n: ("random", n)),  # rows of 4096 words and a tail
    st.integers(1, 9000).map(lambda n: ("zeros", n)),
    st.integers(1, 140_000).map(lambda n: ("ones", n)),
)


@FEW
@given(kind=WORDS, seed=st.integers(0, 2**32 - 1))
def test_fletcher32_equals_hdf5s_checksum(tmp_path, kind, seed):
    what, n = kind
    rng = np.random.default_rng(seed)
    words = {
        "random": rng.integers(-32768, 32768, n, dtype=np.int16),
        "zeros": np.zeros(n, np.int16),
        "ones": np.full(n, -1, np.int16),  # 0xffff words: sums that are multiples of 65535
    }[what]
    data, stored = _hdf5_checksum(tmp_path, words)
    assert fletcher32(data) == stored


def test_fletcher32_in_several_row_blocks_equals_hdf5s(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "_FLETCHER_ROW_WORDS", 64)
    monkeypatch.setattr(ingest, "_FLETCHER_BLOCK_ROWS", 3)
    words = np.random.default_rng(5).integers(-32768, 32768, 64 * 11 + 17, dtype=np.int16)
    data, stored = _hdf5_checksum(tmp_path, words)
    assert fletcher32(data) == stored
    monkeypatch.setattr(ingest, "_FLETCHER_PIECE_WORDS", 200)  # pieces summed apart, combined
    assert fletcher32(data) == stored


def test_fletcher32_sees_a_changed_byte(tmp_path):
    words = np.random.default_rng(6).integers(-32768, 32768, 5000, dtype=np.int16)
    data, stored = _hdf5_checksum(tmp_path, words)
    data[1234] ^= 0x10
    assert fletcher32(data) != stored


# ----- slab reads -----------------------------------------------------------------------------------
LAYOUTS = {
    "writer (fast path, fletcher32)": dict(chunks=(3, 512, 2), fletcher32=True),
    "fast path, no filter": dict(chunks=(3, 300, 2)),
    "chunk per channel": dict(chunks=(1, 256, 2), fletcher32=True),
    "shuffle": dict(chunks=(3, 512, 2), shuffle=True, fletcher32=True),
    "contiguous": dict(),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One file with the same int16 ``[3, 5000, 2]`` in several layouts, and a cf32 copy."""
    path = tmp_path_factory.mktemp("slabs") / "layouts.h5"
    pairs = _pairs(np.random.default_rng(11), 3, 5000)
    with h5py.File(path, "w") as f:
        for name, kw in LAYOUTS.items():
            f.create_dataset(name, data=pairs, **kw)
        f.create_dataset("cf32", data=plain_conversion(pairs), chunks=(3, 512))
        d = f.create_dataset(
            "sparse", shape=(3, 5000, 2), dtype=np.int16, chunks=(3, 512, 2), fletcher32=True
        )
        d[:, 1024:1536] = pairs[:, 1024:1536]  # other chunks never written: fill values
    f = h5py.File(path, "r")
    yield f, pairs
    f.close()


@pytest.mark.parametrize("name", [*LAYOUTS, "cf32", "sparse"])
@FEW
@given(data=st.data())
def test_reading_in_slabs_gives_exactly_the_samples_of_one_whole_read(datasets, name, data):
    f, _ = datasets
    ds = f[name]
    whole = plain_conversion(ds[()]) if ds.dtype == np.int16 else ds[()]
    slab = data.draw(st.integers(61, 6000), label="slab_samples")
    reader = SlabReader(ds, "cf32_le" if name == "cf32" else "ci16_le", slab_samples=slab)
    assert reader.fast == (name in ("writer (fast path, fletcher32)", "fast path, no filter", "sparse"))
    start = data.draw(st.integers(0, 5000), label="start")
    stop = data.draw(st.integers(start, 5000), label="stop")
    np.testing.assert_array_equal(_bits(reader.read(start, stop)), _bits(whole[:, start:stop]))
    step = data.draw(st.integers(97, 2500), label="step")  # consecutive pieces, as iter_chunks reads
    pieces = [reader.read(a, min(a + step, 5000)) for a in range(0, 5000, step)]
    np.testing.assert_array_equal(_bits(np.concatenate(pieces, axis=1)), _bits(whole))


def test_a_corrupt_chunk_leaves_the_fast_path_and_hdf5_reports_it(tmp_path, datasets):
    path = tmp_path / "c.h5"
    pairs = _pairs(np.random.default_rng(12), 3, 2048)
    with h5py.File(path, "w") as f:
        f.create_dataset("iq", data=pairs, chunks=(3, 512, 2), fletcher32=True)
        offset = f["iq"].id.get_chunk_info(2).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 40] ^= 0xFF
    path.write_bytes(bytes(raw))
    with h5py.File(path, "r") as f:
        reader = SlabReader(f["iq"], "ci16_le")
        assert reader.raw_chunk(1) is not None and reader.raw_chunk(2) is None
        np.testing.assert_array_equal(_bits(reader.read(0, 1024)), _bits(plain_conversion(pairs[:, :1024])))
        with pytest.raises(OSError):
            reader.read(1000, 1100)
        # int16 pairs as stored (replay's read): the same checks, the same fallback to HDF5
        np.testing.assert_array_equal(reader.read_pairs(0, 1024), pairs[:, :1024])
        with pytest.raises(OSError):
            reader.read_pairs(1000, 1100)
        with pytest.raises(ValueError, match="outside"):
            reader.read_pairs(10, 2049)
    cf32 = SlabReader(datasets[0]["cf32"], "cf32_le")
    with pytest.raises(ValueError, match="ci16_le"):
        cf32.read_pairs(0, 10)


def test_read_into_checks_its_output_and_range(datasets):
    f, _ = datasets
    reader = SlabReader(f["writer (fast path, fletcher32)"], "ci16_le")
    with pytest.raises(ValueError, match="outside"):
        reader.read(10, 5001)
    with pytest.raises(ValueError, match="complex64"):
        reader.read_into(0, 10, np.zeros((3, 9), np.complex64))


# ----- writing whole chunks raw ---------------------------------------------------------------------
@FEW
@given(sizes=st.lists(st.integers(1, 200_000), min_size=1, max_size=5), swmr=st.booleans())
def test_writer_chunks_with_their_own_checksum_read_back_through_hdf5s_check(tmp_path, wf, sizes, swmr):
    """Appends of any size (whole chunks raw with the numpy fletcher32, ragged ends through HDF5):
    h5py's read, which verifies every chunk's checksum in HDF5, gives back exactly what went in."""
    rng = np.random.default_rng(sum(sizes))
    pieces = [_pairs(rng, 2, k) for k in sizes]
    path = tmp_path / "w.h5"
    with CaptureWriter(
        path, wf, channels_for(wf, ["central", "upper"]), 30.72e6, overwrite=True, swmr=swmr
    ) as w:
        for p in pieces:
            w.append(p)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["iq"][()], np.concatenate(pieces, axis=1))
        assert f["iq"].fletcher32
        for i in range(f["iq"].id.get_num_chunks()):
            assert f["iq"].id.get_chunk_info(i).filter_mask == 0


@pytest.mark.parametrize("name", [*LAYOUTS, "sparse"])
@FEW
@given(data=st.data())
def test_int16_pairs_are_read_exactly_as_stored_in_every_layout(datasets, name, data):
    """``read_pairs`` (what replay hands the receiver) gives the stored int16 pairs, whatever the
    layout, the range and the pieces (fill values where a chunk was never written)."""
    f, _ = datasets
    ds = f[name]
    whole = ds[()]
    reader = SlabReader(ds, "ci16_le")
    start = data.draw(st.integers(0, 5000), label="start")
    stop = data.draw(st.integers(start, 5000), label="stop")
    got = reader.read_pairs(start, stop)
    assert got.dtype == np.int16 and got.shape == (3, stop - start, 2)
    np.testing.assert_array_equal(got, whole[:, start:stop])
    step = data.draw(st.integers(97, 2500), label="step")
    pieces = [reader.read_pairs(a, min(a + step, 5000)) for a in range(0, 5000, step)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    assert not np.shares_memory(pieces[0], pieces[-1])  # new arrays: the receiver keeps views


@FEW
@given(data=st.data())
def test_fletcher32_of_parts_equals_that_of_their_concatenation(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    sizes = data.draw(st.lists(st.integers(0, 9000), min_size=1, max_size=5), label="words")
    parts = [rng.integers(0, 65536, n, dtype=np.uint16) for n in sizes]
    whole = np.concatenate(parts).view(np.uint8)
    assert fletcher32_parts(parts) == fletcher32(whole)
    with pytest.raises(ValueError, match="contiguous"):
        fletcher32_parts([np.zeros(10, np.uint16)[::2]])


def test_whole_chunks_are_read_by_the_operating_system_into_the_output(datasets, monkeypatch):
    """The fast path reads whole stored chunks with ``os.preadv`` straight into the output rows
    (no GIL, no copy); h5py's chunk read is left for partial chunks."""
    f, pairs = datasets
    reader = SlabReader(f["writer (fast path, fletcher32)"], "ci16_le")
    assert reader._fd is not None
    calls = []
    raw_chunk = SlabReader.raw_chunk
    monkeypatch.setattr(SlabReader, "raw_chunk", lambda self, k: calls.append(k) or raw_chunk(self, k))
    np.testing.assert_array_equal(reader.read_pairs(512, 2048), pairs[:, 512:2048])
    assert calls == []  # chunks 1 and 2 whole: read into the output
    np.testing.assert_array_equal(reader.read_pairs(500, 1100), pairs[:, 500:1100])
    assert calls == [0, 2]  # the partial chunks at either end: through the reused buffer
    reader._fd = None  # no descriptor (another driver): h5py reads every chunk
    np.testing.assert_array_equal(reader.read_pairs(512, 1024), pairs[:, 512:1024])
    assert calls[-1] == 1


def test_int16_pairs_of_a_growing_file_are_never_read_from_a_chunk_since_rewritten(tmp_path, wf):
    """A recording being written (SWMR): its last chunk is partial and HDF5 rewrites it when it
    fills (here in place; were it moved, its old place would still hold bytes that pass their
    old checksum, which is why the reader keeps the places of complete chunks only: this test
    cannot force a move, it checks that a reader that read the partial chunk reads the grown
    file right)."""
    from captures.reader import open_capture

    rng = np.random.default_rng(21)
    c = CHUNK_SAMPLES
    first, more = _pairs(rng, 3, c + c // 3), _pairs(rng, 3, c)
    path = tmp_path / "g.h5"
    with CaptureWriter(
        path, wf, channels_for(wf, ["central", "lower", "upper"]), 30.72e6, overwrite=True, swmr=True
    ) as w:
        w.append(first)
        with open_capture(path, swmr=True) as cap:
            np.testing.assert_array_equal(cap.read(0, first.shape[1], pairs=True), first)  # chunk 1 partial
            w.append(more)  # fills chunk 1 (rewritten by HDF5) and starts chunk 2
            cap.refresh()
            whole = np.concatenate([first, more], axis=1)
            np.testing.assert_array_equal(cap.read(0, whole.shape[1], pairs=True), whole)
            np.testing.assert_array_equal(cap.read(c, 2 * c, pairs=True), whole[:, c : 2 * c])


def test_int16_pairs_arrays_are_reused_only_once_let_go(datasets):
    """``read_pairs`` hands out pooled arrays (no page faults on fresh memory per chunk): never
    one that a caller still holds, or views (the receiver keeps views of recent chunks)."""
    f, pairs = datasets
    reader = SlabReader(f["writer (fast path, fletcher32)"], "ci16_le")
    a = reader.read_pairs(0, 512)
    view = a[:, 100:]
    a_id = id(a)
    del a
    b = reader.read_pairs(512, 1024)  # a is still viewed: another array
    assert id(b) != a_id
    np.testing.assert_array_equal(view, pairs[:, 100:512])  # the view still holds its samples
    del view, b
    c = reader.read_pairs(1024, 1536)
    assert id(c) == a_id  # free again: the first array comes back, with the new samples
    np.testing.assert_array_equal(c, pairs[:, 1024:1536])
