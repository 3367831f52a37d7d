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
        ("capture_rate_hz", 1e6 / 3**0.5),  # no rational ratio
        ("preamble_barker_length", 9),
    ],
)
def test_impossible_values_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        WaveformConfig(**{field: value})


@settings(max_examples=60, deadline=None)
@given(
    smax=st.integers(-2000, 2000),
    shift=st.floats(0, 200e6, allow_nan=False),
    rate=st.floats(1, 1e6, allow_nan=False),
)
def test_any_configuration_is_valid_or_refused_with_a_named_field(smax, shift, rate):
    try:
        wf = WaveformConfig(subcarrier_max=smax, tag_shift_hz=shift, tag_symbol_rate_baud=rate)
    except ConfigError as exc:
        assert "WaveformConfig." in str(exc)
        return
    # accepted: the invariants the validator promises hold
    assert 0 < wf.subcarrier_max < wf.fft_size // 2
    assert wf.tag_shift_hz >= wf.occupied_bandwidth_hz
    assert wf.tag_symbol_rate_baud < wf.ofdm_symbol_rate_hz
    assert json.loads(wf.to_json())["subcarrier_max"] == smax


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), min_size=1, max_size=3))
def test_random_keys_are_refused_unless_known(d):
    known = set(WaveformConfig.field_names())
    if set(d) <= known:
        return
    with pytest.raises(ConfigError, match="unknown key"):
        WaveformConfig.from_dict(d)
