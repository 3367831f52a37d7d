"""Mutation check, session 14 (docs/MUTATION.md): ``dsp.waveform`` and ``dsp.config_base``.

The waveform's derived numbers feed every published number, and the fast tests compared only a
few of them, to a tolerance, and checked a refusal only by the field's name anywhere in the
message.  Here the default profile's numbers are computed again from SYSTEM.md section 2
(``fs`` 30.72 MS/s, ``N`` 1024, ``K_act`` -400..400 without DC, ``K`` 4096, 2 kBd, a 125-bit
packet) and compared exactly where the arithmetic is exact; each validation is checked at its
exact boundary (accepted on one side, refused one step past it) with the whole message, which
names the class, the field and the value (``ConfigBase._fail``).  The configuration mixin's
coercions, mapping, JSON and HDF5 attribute paths are checked on a small configuration class
with a field of each annotated type.
"""

from __future__ import annotations

import cmath
import dataclasses
import json
import math
import re
from fractions import Fraction
from typing import Any, ClassVar, Optional

import numpy as np
import pytest

from dsp.config_base import JSON_PREFIX, ConfigBase, ConfigError
from dsp.waveform import (
    BARKER_CODES,
    PROFILES,
    SPEED_OF_LIGHT_M_S,
    WAVEFORM_VERSION,
    WaveformConfig,
    get_profile,
    zadoff_chu,
)

C = 299_792_458.0  # m/s, exact by definition of the metre
DF = 30e3  # 30.72e6 / 1024: exact in binary


def refused(message: str, **fields: Any) -> None:
    """``WaveformConfig(**fields)`` raises ``ConfigError`` with exactly ``message``."""
    with pytest.raises(ConfigError) as exc:
        WaveformConfig(**fields)
    assert str(exc.value) == message


# ----- the default numerology (SYSTEM.md section 2) ------------------------------------------------
def test_default_profile_numbers_from_the_spec():
    wf = get_profile("default")
    assert wf == WaveformConfig() and wf.profile == "default" and wf.version == WAVEFORM_VERSION == 1
    assert SPEED_OF_LIGHT_M_S == C
    assert (wf.working_rate_hz, wf.capture_rate_hz, wf.fft_size) == (30.72e6, 30.72e6, 1024)
    assert wf.subcarrier_spacing_hz == DF and wf.ofdm_symbol_rate_hz == DF
    assert wf.ofdm_symbol_duration_s == 1 / 30e3  # 1024 / 30.72e6, correctly rounded both ways
    # the band -400..400 spans 801 subcarrier spacings (DC unused but inside the band)
    assert wf.occupied_bandwidth_hz == 801 * DF
    k = np.r_[-400:0, 1:401]
    assert wf.active_subcarriers.tolist() == k.tolist()
    assert wf.active_bins.tolist() == np.where(k < 0, k + 1024, k).tolist()
    assert wf.active_freqs_hz.tolist() == (k * DF).tolist()
    assert wf.band_centers_hz == {"central": 915e6, "lower": 870e6, "upper": 960e6}
    assert wf.tag_symbol_duration_s == 1 / 2000
    assert wf.ofdm_symbols_per_tag_symbol == pytest.approx(15, rel=1e-15)
    assert wf.packet_bits == 125 and wf.packet_duration_s == 0.0625
    assert wf.cir_fft_size == 4096 and wf.burst_period_s == 0.1
    assert wf.cir_grid_step_s == pytest.approx(1 / (4096 * DF), rel=1e-15, abs=0)
    assert wf.cir_grid_step_m == pytest.approx(C / (4096 * DF), rel=1e-15)  # 2.44 m
    assert wf.max_range_m == pytest.approx(C / DF, rel=1e-15)  # 10 km
    assert wf.resolution_m == pytest.approx(C / (801 * DF), rel=1e-15)
    assert wf.resample_ratio == 1
    assert (wf.carrier_freq_hz, wf.tag_shift_hz, wf.tag_symbol_rate_baud) == (915e6, 45e6, 2000.0)
    assert (wf.preamble_barker_length, wf.tag_id_bits, wf.payload_bits, wf.crc_bits) == (13, 32, 64, 16)
    assert (wf.subcarrier_min, wf.subcarrier_max, wf.null_dc, wf.zc_root) == (-400, 400, True, 1)


def test_x410_profile_differs_from_the_default_only_in_its_capture_rate():
    wf = get_profile("x410-62m5")
    assert sorted(PROFILES) == ["default", "x410-62m5"]
    assert wf == WaveformConfig(profile="x410-62m5", capture_rate_hz=62.5e6)
    assert wf.resample_ratio == Fraction(30_720, 62_500)  # 1536 / 3125


def test_an_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError) as exc:
        get_profile("nope")
    assert str(exc.value) == "unknown waveform profile 'nope'; known profiles: ['default', 'x410-62m5']"


def test_configurations_are_frozen_and_their_index_arrays_read_only():
    wf = WaveformConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.fft_size = 512  # type: ignore[misc]
    assert not wf.active_subcarriers.flags.writeable and not wf.active_bins.flags.writeable


def test_null_dc_false_keeps_the_dc_subcarrier():
    wf = WaveformConfig(null_dc=False, subcarrier_min=-4, subcarrier_max=3)
    assert wf.active_subcarriers.tolist() == list(range(-4, 4))
    assert wf.active_bins.tolist() == [1020, 1021, 1022, 1023, 0, 1, 2, 3]


@pytest.mark.parametrize("root,length", [(1, 800), (7, 800), (25, 63), (3, 139), (1, 12)])
def test_zadoff_chu_is_its_formula(root, length):
    """``exp(-j pi u n (n + c) / L)`` with ``c = L mod 2``, the phase reduced in integers."""
    c = length % 2
    want = [cmath.exp(-1j * math.pi * ((root * n * (n + c)) % (2 * length)) / length) for n in range(length)]
    np.testing.assert_allclose(zadoff_chu(root, length), want, rtol=0, atol=1e-13)


def test_the_symbol_carries_the_zadoff_chu_sequence_of_its_root():
    wf = WaveformConfig(zc_root=3)
    np.testing.assert_array_equal(wf.zadoff_chu, zadoff_chu(3, 800))
    np.testing.assert_array_equal(wf.symbol_freq[wf.active_bins], zadoff_chu(3, 800))


def test_barker_codes_are_the_published_ones():
    """The table of Barker codes (+1 as 1, -1 as 0) and their defining property: every aperiodic
    autocorrelation sidelobe is at most 1 in magnitude."""
    plus = {
        2: "+-",
        3: "++-",
        4: "++-+",
        5: "+++-+",
        7: "+++--+-",
        11: "+++---+--+-",
        13: "+++++--++-+-+",
    }
    assert {n: "".join("+" if b else "-" for b in code) for n, code in BARKER_CODES.items()} == plus
    for n, code in BARKER_CODES.items():
        s = 2 * np.array(code) - 1
        assert len(code) == n and set(code) <= {0, 1}
        assert np.max(np.abs(np.correlate(s, s, "full")[: n - 1])) <= 1


# ----- validation: each bound at its exact value, the whole message --------------------------------
def test_rates_only_need_to_be_positive_and_finite():
    """A 1 Hz (and 0.5 Hz) working rate with a slow enough tag is a valid configuration."""
    for fs in (1.0, 0.5):
        WaveformConfig(working_rate_hz=fs, capture_rate_hz=fs, tag_symbol_rate_baud=1e-4, burst_period_s=1e7)
    for name in ("working_rate_hz", "capture_rate_hz", "carrier_freq_hz", "tag_shift_hz"):
        for v in (0.0, -1.0, math.inf, math.nan):
            refused(f"WaveformConfig.{name} = {v!r}: must be a positive finite number", **{name: v})


def test_version_other_than_this_builds_refused():
    refused("WaveformConfig.version = 2: unsupported waveform version (this build reads 1)", version=2)


def test_fft_size_bounds():
    WaveformConfig(fft_size=16, subcarrier_min=-6, subcarrier_max=6)
    big = 65536 * DF
    WaveformConfig(fft_size=65536, cir_fft_size=65536, working_rate_hz=big, capture_rate_hz=big)
    for n in (15, 65537):
        refused(f"WaveformConfig.fft_size = {n}: must be between 16 and 65536", fft_size=n)


def test_subcarrier_bounds_and_the_noise_probes_room():
    WaveformConfig(subcarrier_min=-510, subcarrier_max=510)
    WaveformConfig(subcarrier_min=-1, subcarrier_max=400)
    WaveformConfig(subcarrier_min=-400, subcarrier_max=1)
    for v in (-512, 0, -513):
        refused(
            f"WaveformConfig.subcarrier_min = {v}: must lie in (-512, 0) for fft_size 1024", subcarrier_min=v
        )
    for v in (512, 0, 513):
        refused(
            f"WaveformConfig.subcarrier_max = {v}: must lie in (0, 512) for fft_size 1024", subcarrier_max=v
        )
    probe = "leaves no unused subcarrier between the band and Nyquist for the noise probe: "
    probe += "|subcarrier| must stay <= 510 for fft_size 1024"
    refused(f"WaveformConfig.subcarrier_max = 511: {probe}", subcarrier_max=511)
    refused(f"WaveformConfig.subcarrier_min = -511: {probe}", subcarrier_min=-511)
    refused(f"WaveformConfig.subcarrier_max = 511: {probe}", subcarrier_min=-511, subcarrier_max=511)
    refused(f"WaveformConfig.subcarrier_max = 511: {probe}", subcarrier_min=-510, subcarrier_max=511)
    refused(f"WaveformConfig.subcarrier_min = -511: {probe}", subcarrier_min=-511, subcarrier_max=510)
    # an odd FFT size: half is 33 // 2 = 16, not 16.5
    refused(
        "WaveformConfig.subcarrier_max = 15: " + probe.replace("510 for fft_size 1024", "14 for fft_size 33"),
        fft_size=33,
        subcarrier_min=-5,
        subcarrier_max=15,
    )
    WaveformConfig(fft_size=33, subcarrier_min=-14, subcarrier_max=14)


def test_at_least_eight_active_subcarriers():
    WaveformConfig(subcarrier_min=-4, subcarrier_max=4)
    WaveformConfig(subcarrier_min=-4, subcarrier_max=3, null_dc=False)
    refused(
        "WaveformConfig.subcarrier_max = 3: fewer than 8 active subcarriers",
        subcarrier_min=-4,
        subcarrier_max=3,
    )


def test_zc_root_range_and_coprimality():
    for u in (1, 3, 799):
        WaveformConfig(zc_root=u)
    for u in (0, 800, 10, -1):
        refused(
            f"WaveformConfig.zc_root = {u}: must be in [1, 800) and coprime with 800 active subcarriers",
            zc_root=u,
        )


def test_tag_shift_between_the_occupied_band_and_the_carrier():
    WaveformConfig(tag_shift_hz=801 * DF)
    WaveformConfig(tag_shift_hz=math.nextafter(915e6, 0))
    low = math.nextafter(801 * DF, 0)
    refused(
        f"WaveformConfig.tag_shift_hz = {low!r}: smaller than the occupied bandwidth 2.403e+07 Hz: "
        "the side bands would overlap the central band",
        tag_shift_hz=low,
    )
    refused(
        "WaveformConfig.tag_shift_hz = 915000000.0: must be below the carrier frequency", tag_shift_hz=915e6
    )


def test_tag_symbol_rate_below_the_ofdm_symbol_rate():
    WaveformConfig(tag_symbol_rate_baud=math.nextafter(DF, 0))
    for v in (0.0, DF, -1.0):
        refused(
            f"WaveformConfig.tag_symbol_rate_baud = {v!r}: "
            "must be positive and below the OFDM symbol rate 30000 Hz",
            tag_symbol_rate_baud=v,
        )


def test_packet_field_bounds():
    for n in BARKER_CODES:
        WaveformConfig(preamble_barker_length=n)
    refused(
        "WaveformConfig.preamble_barker_length = 9: no Barker code of this length; use one of "
        "[2, 3, 4, 5, 7, 11, 13]",
        preamble_barker_length=9,
    )
    for v in (0, 64):
        WaveformConfig(tag_id_bits=v)
    for v in (-1, 65):
        refused(f"WaveformConfig.tag_id_bits = {v}: must be in [0, 64]", tag_id_bits=v)
    for v in (0, 4096):
        WaveformConfig(payload_bits=v, burst_period_s=3.0)
    for v in (-1, 4097):
        refused(
            f"WaveformConfig.payload_bits = {v}: must be in [0, 4096]", payload_bits=v, burst_period_s=3.0
        )
    for v in (15, 17):
        refused(f"WaveformConfig.crc_bits = {v}: only CRC-16 is supported", crc_bits=v)


def test_burst_period_must_exceed_the_packet():
    WaveformConfig(burst_period_s=math.nextafter(0.0625, 1))
    for v in (0.0625, math.inf, math.nan):
        refused(
            f"WaveformConfig.burst_period_s = {v!r}: "
            "must exceed the packet duration 0.0625 s (125 bits at 2000 Bd)",
            burst_period_s=v,
        )


def test_cir_fft_size_at_least_the_fft_size():
    WaveformConfig(cir_fft_size=1024)
    refused("WaveformConfig.cir_fft_size = 1023: must be at least fft_size 1024", cir_fft_size=1023)


def test_capture_rate_within_a_factor_8_and_rationally_related():
    for capture in (8 * 30.72e6, 30.72e6 / 8, 62.5e6, 15.36e6):
        WaveformConfig(capture_rate_hz=capture)
    assert WaveformConfig(capture_rate_hz=15.36e6).resample_ratio == 2
    for capture in (8 * 30.72e6 * (1 + 1e-8), 30.72e6 / 8 * (1 - 1e-8)):
        refused(
            f"WaveformConfig.capture_rate_hz = {capture!r}: must be within a factor 8 of working_rate_hz",
            capture_rate_hz=capture,
        )
    # near 1 the nearest fractions with a denominator of at most 10000 are 1 and 10001/10000: a ratio
    # 0.9e-6 off 1 is taken as 1 (within the 1e-6 tolerance), 1.1e-6 off is refused
    near = 30.72e6 * (1 + 0.9e-6)
    assert WaveformConfig(capture_rate_hz=near).resample_ratio == 1
    assert WaveformConfig(working_rate_hz=near, capture_rate_hz=30.72e6).resample_ratio == 1
    for capture in (30.72e6 * (1 + 1.1e-6), 30.72e6 * (1 - 1.1e-6)):
        refused(
            f"WaveformConfig.capture_rate_hz = {capture!r}: no rational resampling ratio with a denominator "
            "of at most 10000 reaches working_rate_hz 30720000.0",
            capture_rate_hz=capture,
        )
    # the tolerance is inclusive: 1 Hz off at 1 MHz (1e-6 exactly, in floats too) is taken as 1
    slow = {"working_rate_hz": 1e6, "tag_symbol_rate_baud": 500.0, "burst_period_s": 1.0}
    assert WaveformConfig(capture_rate_hz=1e6 + 1, **slow).resample_ratio == 1
    with pytest.raises(
        ConfigError, match=r"^WaveformConfig\.capture_rate_hz = 1000001\.0000001: no rational"
    ):
        WaveformConfig(capture_rate_hz=1e6 + 1.0000001, **slow)
    # the ratio is the nearest fraction with a denominator of at most 10000: 10000/10001 is taken
    # as 9999/10000 (1e-8 off, within the tolerance)
    assert WaveformConfig(capture_rate_hz=30.72e6 * 1.0001).resample_ratio == Fraction(9_999, 10_000)


# ----- ConfigBase on a configuration with one field of each annotated type -------------------------
@dataclasses.dataclass(frozen=True)
class Demo(ConfigBase):
    n: int = 1
    x: float = 0.5
    flag: bool = False
    name: str = "a"
    pair: tuple[int, int] = (1, 2)
    names: tuple[str, ...] = ("a",)
    maybe: float | None = None
    opt: Optional[int] = None  # noqa: UP045 - typing.Union, not types.UnionType
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"old_n": "n"}

    def _validate(self) -> None:
        if self.n < 0:
            self._fail("n", "must be non-negative")


def demo_error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as exc:
        Demo(**fields)
    return str(exc.value)


def test_values_are_coerced_to_their_annotated_types():
    d = Demo(n=2.0, x=1, flag=True, name=b"bc", pair=np.array([3, 4]), names=["p", "q"], maybe=2, opt=3.0)
    assert d == Demo(n=2, x=1.0, flag=True, name="bc", pair=(3, 4), names=("p", "q"), maybe=2.0, opt=3)
    for v in (d.n, d.opt, *d.pair):
        assert type(v) is int
    assert type(d.x) is float and type(d.maybe) is float and type(d.flag) is bool and type(d.name) is str
    assert type(d.pair) is tuple and type(d.names) is tuple
    assert Demo(flag=1).flag is True and Demo(flag=0).flag is False
    # a numpy array's items become Python values (tolist), not numpy scalars
    assert [type(v) for v in Demo(names=np.array(["p", "q"])).names] == [str, str]
    assert Demo(n=np.int64(4)).n == 4 and Demo(n="5").n == 5
    assert Demo(maybe=None, opt=None) == Demo()
    assert Demo(extra={"k": [1]}).extra == {"k": [1]}


def test_a_numpy_boolean_is_a_boolean():
    """``_coerce`` accepted numpy booleans by the type name ``bool_``, numpy 1's; numpy 2 calls the
    type ``bool``, so ``np.True_`` was refused (found in session 14; HDF5 attributes passed:
    ``tolist`` first).  Now by ``isinstance(value, np.bool_)``."""
    assert Demo(flag=np.bool_(True)).flag is True
    assert WaveformConfig(null_dc=np.bool_(False)).null_dc is False


def test_coercion_failures_name_the_class_the_field_and_the_value():
    assert demo_error(n=1.5) == "Demo.n: expected an integer, got 1.5"
    assert demo_error(n=True) == "Demo.n: expected an integer, got True"
    assert demo_error(n="abc") == "Demo.n: cannot use 'abc': could not convert string to float: 'abc'"
    assert demo_error(n=math.inf) == "Demo.n: cannot use inf: cannot convert float infinity to integer"
    assert demo_error(x=False) == "Demo.x: expected a number, got False"
    assert demo_error(x=None).startswith("Demo.x: cannot use None: float() argument must be")
    assert demo_error(flag="yes") == "Demo.flag: expected a boolean, got 'yes'"
    assert demo_error(flag=1.0) == "Demo.flag: expected a boolean, got 1.0"
    assert demo_error(name=3) == "Demo.name: expected a string, got 3"
    assert demo_error(pair=[1, 2, 3]) == "Demo.pair: expected 2 values, got 3 ([1, 2, 3])"
    assert demo_error(pair=[1.5, 2]) == "Demo.pair: expected an integer, got 1.5"
    assert demo_error(names=[1]) == "Demo.names: expected a string, got 1"
    assert demo_error(maybe="z") == "Demo.maybe: cannot use 'z': could not convert string to float: 'z'"
    assert demo_error(opt=2.5) == "Demo.opt: expected an integer, got 2.5"
    assert demo_error(n=-1) == "Demo.n = -1: must be non-negative"
    with pytest.raises(ConfigError) as exc:
        Demo(pair=5)
    assert str(exc.value).startswith("Demo.pair: cannot use 5: ")
    assert issubclass(ConfigError, ValueError)


def test_from_dict_refuses_non_mappings_and_unknown_keys_and_fills_from_a_base():
    known = "['extra', 'flag', 'maybe', 'n', 'name', 'names', 'opt', 'pair', 'x']"
    assert Demo.field_names() == ["n", "x", "flag", "name", "pair", "names", "maybe", "opt", "extra"]
    with pytest.raises(ConfigError) as exc:
        Demo.from_dict([("n", 1)])  # type: ignore[arg-type]
    assert str(exc.value) == "Demo: expected a mapping, got list"
    with pytest.raises(ConfigError) as exc:
        Demo.from_dict({"zz": 1, "n": 2, "aa": 3})
    assert str(exc.value) == f"Demo: unknown key(s) ['aa', 'zz']; known keys are {known}"
    assert Demo.from_dict({"n": 5}, base=Demo(x=2.0, name="b")) == Demo(n=5, x=2.0, name="b")
    assert Demo.from_dict({"n": 5}) == Demo(n=5)
    assert Demo.from_dict({"old_n": 7}) == Demo(n=7)
    assert Demo.from_dict({"old_n": 7, "x": 3.0}, base=Demo(name="c")) == Demo(n=7, x=3.0, name="c")
    with pytest.raises(ConfigError) as exc:
        Demo.from_dict({"old_n": 7, "n": 7})
    assert str(exc.value) == "Demo: key 'old_n' is the old name of 'n'; give one of them, not both"
    data = {"old_n": 7}
    Demo.from_dict(data)
    assert data == {"old_n": 7}  # the caller's mapping is not renamed in place
    assert Demo().replace(n=3) == Demo(n=3)
    with pytest.raises(ConfigError, match=r"^Demo\.n = -1: "):
        Demo().replace(n=-1)


def test_json_round_trip_with_sorted_keys_and_a_named_error():
    d = Demo(n=3, pair=(5, 6), names=("u", "v"), maybe=1.5, extra={"m": {"k": 2}})
    assert d.to_dict() == {
        "n": 3, "x": 0.5, "flag": False, "name": "a", "pair": [5, 6], "names": ["u", "v"],
        "maybe": 1.5, "opt": None, "extra": {"m": {"k": 2}},
    }  # fmt: skip
    text = d.to_json()
    assert text == json.dumps(d.to_dict(), sort_keys=True)
    assert list(json.loads(text)) == sorted(Demo.field_names())
    assert Demo.from_json(text) == d
    with pytest.raises(ConfigError) as exc:
        Demo.from_json("{nope")
    assert re.fullmatch(r"Demo: invalid JSON: Expecting property name .*\(char 1\)", str(exc.value))


def test_hdf5_attributes_scalars_and_flat_lists_as_they_are_the_rest_as_json():
    d = Demo(n=3, pair=(5, 6), names=("u",), maybe=None, extra={"k": [1, 2]})
    attrs: dict[str, Any] = {}
    d.to_h5_attrs(attrs)
    assert attrs == {
        "n": 3, "x": 0.5, "flag": False, "name": "a", "pair": [5, 6], "names": 'json:["u"]',
        "maybe": "json:null", "opt": "json:null", "extra": 'json:{"k": [1, 2]}',
    }  # fmt: skip
    assert Demo.from_h5_attrs(attrs) == d
    empty: dict[str, Any] = {}
    Demo(names=()).to_h5_attrs(empty)
    assert empty["names"] == JSON_PREFIX + "[]"  # an empty list is not written as an empty array
    assert Demo.from_h5_attrs(empty) == Demo(names=())
    # as h5py reads them back: numpy scalars and arrays, bytes
    h5 = {"n": np.int64(4), "pair": np.array([7, 8]), "name": b"bytes", "names": b'json:["w"]'}
    assert Demo.from_h5_attrs(h5) == Demo(n=4, pair=(7, 8), name="bytes", names=("w",))
    assert Demo.from_h5_attrs({"x": 2.5}, base=Demo(n=9)) == Demo(n=9, x=2.5)
    with pytest.raises(ConfigError) as exc:
        Demo.from_h5_attrs({"extra": "json:{oops"})
    assert re.fullmatch(r"Demo\.extra: invalid JSON attribute: Expecting property name .*", str(exc.value))
