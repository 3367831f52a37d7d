import json

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.config_base import ConfigError
from dsp.waveform import PROFILES, WaveformConfig, get_profile, zadoff_chu


def test_zadoff_chu_constant_amplitude_and_ideal_cyclic_autocorrelation(wf):
    X = wf.zadoff_chu
    assert X.shape == (800,)
    np.testing.assert_allclose(np.abs(X), 1.0, atol=1e-12)
    ac = np.fft.ifft(np.abs(np.fft.fft(X)) ** 2)  # cyclic autocorrelation
    assert abs(ac[0]) == pytest.approx(800, rel=1e-12)
    assert np.max(np.abs(ac[1:])) < 1e-9 * 800


@pytest.mark.parametrize("root,length", [(1, 800), (7, 800), (25, 63), (29, 63), (3, 139)])
def test_zadoff_chu_roots_are_cazac(root, length):
    x = zadoff_chu(root, length)
    np.testing.assert_allclose(np.abs(x), 1.0, atol=1e-12)
    ac = np.fft.ifft(np.abs(np.fft.fft(x)) ** 2)
    assert np.max(np.abs(ac[1:])) < 1e-9 * length


def test_symbol_only_on_active_subcarriers_with_unit_magnitude(wf):
    X = wf.symbol_freq
    active = np.zeros(wf.fft_size, bool)
    active[wf.active_bins] = True
    np.testing.assert_allclose(np.abs(X[active]), 1.0)
    assert np.all(X[~active] == 0)
    assert X[0] == 0  # DC unused
    # x[n] = N**-0.5 sum X[k] exp(j 2 pi k n / N): power K_act / N per sample
    x = wf.symbol_time
    assert np.mean(np.abs(x) ** 2) == pytest.approx(800 / 1024)
    n = np.arange(wf.fft_size)
    k = wf.active_subcarriers
    direct = (wf.zadoff_chu[None, :] * np.exp(2j * np.pi * np.outer(n, k) / wf.fft_size)).sum(1) / 32
    np.testing.assert_allclose(x, direct, atol=1e-9)


def test_default_numerology(wf):
    assert wf.subcarrier_spacing_hz == 30e3
    assert wf.occupied_bandwidth_hz == pytest.approx(24.03e6)
    assert wf.cir_grid_step_m == pytest.approx(2.44, abs=0.01)
    assert wf.max_range_m == pytest.approx(9993.08, abs=0.01)
    assert wf.ofdm_symbols_per_tag_symbol == pytest.approx(15)
    assert wf.packet_bits == 13 + 32 + 64 + 16
    assert wf.band_centers_hz == {"central": 915e6, "lower": 870e6, "upper": 960e6}


def test_x410_profile_resamples_rationally():
    wf = get_profile("x410-62m5")
    assert wf.capture_rate_hz == 62.5e6
    assert wf.resample_ratio.numerator == 1536 and wf.resample_ratio.denominator == 3125


def test_unknown_profile_names_known_ones():
    with pytest.raises(ConfigError, match="x410-62m5"):
        get_profile("nope")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_json_and_hdf5_round_trip_is_lossless(name, tmp_path):
    wf = PROFILES[name]
    assert WaveformConfig.from_json(wf.to_json()) == wf
    with h5py.File(tmp_path / "w.h5", "w") as f:
        wf.to_h5_attrs(f.create_group("w").attrs)
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert WaveformConfig.from_h5_attrs(f["w"].attrs) == wf


def test_unknown_key_refused_with_its_name():
    with pytest.raises(ConfigError, match="bogus_field"):
        WaveformConfig.from_dict({"bogus_field": 1})


def test_old_name_of_the_working_rate_still_loads(tmp_path):
    """Configurations written before the rename call the working rate ``sample_rate_hz``."""
    old = {k: v for k, v in get_profile("x410-62m5").to_dict().items() if k != "working_rate_hz"}
    old["sample_rate_hz"] = 15.36e6
    wf = WaveformConfig.from_json(json.dumps(old))
    assert wf.working_rate_hz == 15.36e6 and wf.capture_rate_hz == 62.5e6
    assert "sample_rate_hz" not in wf.to_dict()
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs.update(old)
        assert WaveformConfig.from_h5_attrs(f.attrs) == wf
    with pytest.raises(ConfigError, match="'sample_rate_hz' is the old name of 'working_rate_hz'"):
        WaveformConfig.from_dict({"sample_rate_hz": 30.72e6, "working_rate_hz": 30.72e6})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['sample_rate'\]"):
        WaveformConfig.from_dict({"sample_rate": 30.72e6})


@pytest.mark.parametrize(
    "field,value",
    [
        ("subcarrier_max", 512),  # outside the FFT
        ("subcarrier_min", -600),
        ("tag_shift_hz", 20e6),  # smaller than the occupied bandwidth
        ("tag_symbol_rate_baud", 30e3),  # not below the OFDM symbol rate
        ("zc_root", 10),  # not coprime with 800
        ("burst_period_s", 0.05),  # shorter than the 62.5 ms packet
        ("cir_fft_size", 512),
        ("version", 2),
        ("capture_rate_hz", 1e6 / 3**0.5),  # 53 times below the working rate (factor 8 at most)
        ("preamble_barker_length", 9),
    ],
)
def test_impossible_values_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        WaveformConfig(**{field: value})


DF_HZ = 30.72e6 / 1024  # subcarrier spacing of the default profile (30 kHz, exact in binary)
FC_HZ = 915e6
PACKET_BITS = 13 + 32 + 64 + 16  # default packet: 125 bits must fit in the 0.1 s burst period
RATE_MIN = PACKET_BITS / 0.1  # 1250 Bd: slower and the packet outlasts the burst period


@st.composite
def shift_configs(draw) -> tuple[dict, str | None]:
    """``subcarrier_max``, ``tag_shift_hz`` and ``tag_symbol_rate_baud``, with the field the
    validator must name (``None``: every value valid).  Half the examples are valid; the others
    break exactly one of the three, drawn from the invalid side of that field's bound.

    Valid: ``0 < smax < 511`` (one unused subcarrier below Nyquist for the noise probe);
    ``shift`` from the occupied bandwidth ``(smax + 401) df`` (subcarriers ``-400..smax``) up to
    the carrier (excluded); ``rate`` above ``RATE_MIN``
    (kept 1e-9 off it: the packet duration is computed in floats) and below the OFDM symbol
    rate ``df``.  A rate in ``(0, RATE_MIN]`` is refused through ``burst_period_s``.
    """
    smax = draw(st.integers(1, 510))
    b_occ = (smax + 401) * DF_HZ
    shift = draw(st.floats(b_occ, FC_HZ, exclude_max=True))
    rate = draw(st.floats(RATE_MIN * (1 + 1e-9), DF_HZ, exclude_max=True))
    fields = ("subcarrier_max", "tag_shift_hz", "tag_symbol_rate_baud")
    broken = draw(st.sampled_from((None,) * len(fields) + fields))  # valid half of the time
    field = broken
    if broken == "subcarrier_max":
        smax = draw(st.integers(-2000, 0) | st.integers(511, 2000))
    elif broken == "tag_shift_hz":
        shift = draw(st.floats(0, b_occ, exclude_max=True) | st.floats(FC_HZ, 1e12))
    elif broken == "tag_symbol_rate_baud":
        rate = draw(st.floats(-1e6, 0) | st.floats(DF_HZ, 1e9) | st.floats(1e-3, RATE_MIN))
        if 0 < rate <= RATE_MIN:
            field = "burst_period_s"
    return {"subcarrier_max": smax, "tag_shift_hz": shift, "tag_symbol_rate_baud": rate}, field


@settings(max_examples=60, deadline=None)
@given(case=shift_configs())
def test_any_configuration_is_valid_or_refused_with_a_named_field(case):
    """Valid configurations are accepted and keep the validator's invariants; a configuration with
    one field out of range is refused with a message naming that field."""
    fields, broken = case
    if broken is not None:
        with pytest.raises(ConfigError, match=rf"^WaveformConfig\.{broken} = "):
            WaveformConfig(**fields)
        return
    wf = WaveformConfig(**fields)
    assert 0 < wf.subcarrier_max < wf.fft_size // 2 - 1
    assert wf.occupied_bandwidth_hz <= wf.tag_shift_hz < wf.carrier_freq_hz
    assert 0 < wf.tag_symbol_rate_baud < wf.ofdm_symbol_rate_hz
    assert wf.packet_duration_s < wf.burst_period_s
    assert len(wf.active_subcarriers) == 400 + fields["subcarrier_max"]
    assert WaveformConfig.from_json(wf.to_json()) == wf
    assert json.loads(wf.to_json())["subcarrier_max"] == fields["subcarrier_max"]


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), min_size=1, max_size=3))
def test_random_keys_are_refused_unless_known(d):
    known = set(WaveformConfig.field_names())
    if set(d) <= known:
        return
    with pytest.raises(ConfigError, match="unknown key"):
        WaveformConfig.from_dict(d)
