"""Look-back (dsp/look_back.py): the cases the mutation check of session 12 found untested.

The windows are those of tests/test_look_back.py (``_setup``: known tag samples ``b_m`` on a
three-path channel inside the tap window, known fractional delays, no noise), so the answers
are exact but for the delay polynomial and the tap window's leak: ``REL_TOL`` = 1e-2 there.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from dsp.look_back import LookBack
from tests.test_look_back import REL_TOL, _setup


def test_windows_after_the_last_kept_one_or_between_kept_ones_have_no_features():
    """Only windows 5..14 of 20 kept, and window 9 dropped: windows 15..19 lie after every kept
    start (``searchsorted`` returns the array's length for them) and must read nan, as window 9
    and windows 0..4 do, without indexing past the kept windows; a CFR needing any of them is
    None."""
    space, basis, _, f, b, _, features, starts, reference = _setup(0.0, 0.0, windows=20)
    keep = np.r_[5:9, 10:15]
    lb = LookBack(space, basis, starts[keep], features[keep], 0.0)
    z = lb.tag_samples(starts, f, lb.columns(reference, 0.0))
    missing = np.ones(20, bool)
    missing[keep] = False
    assert np.array_equal(np.isnan(z), missing)
    assert np.max(np.abs(z[keep] - b[keep])) < REL_TOL  # |b| = 1
    pos, found = lb.locate(starts)
    assert np.array_equal(found, ~missing) and np.array_equal(pos[keep], np.arange(keep.size))
    assert lb.cfr(starts[10:], f[10:], np.conj(b[10:]), 0.0) is None
    assert lb.cfr(starts[keep], f[keep], np.conj(b[keep]), 0.0) is not None


def test_features_taken_at_a_central_cfo_are_read_at_the_band_cfo():
    """Every other test takes the features with ``nu0`` = 0.  Here the central CFO removed inside
    each window is 2 kHz and the band sits at 2.5 kHz: the columns fitted at the band's CFO give
    its tag samples, and the CFR read at ``cfo - nu0`` = 500 Hz is the channel, both within
    ``REL_TOL`` (the 500 Hz left in the features leak ``(pi delta)**2 / 3`` = 0.1 % of the
    power, ``delta`` = 500 / 30 kHz, as in tests/test_look_back.py).  Read at ``cfo + nu0`` (4.5
    kHz off, 0.15 subcarrier of smear) the CFR is more than 10 % off (the last test of
    tests/test_tag_offset.py), and features fitted without the central CFO's derotation leave
    2 kHz in the windows, ``(pi delta)**2 / 3`` = 1.5 % of their power outside the span."""
    space, basis, cfr, f, b, _, features, starts, reference = _setup(2500.0, 2000.0)
    lb = LookBack(space, basis, starts, features, 2000.0)
    z = lb.tag_samples(starts, f, lb.columns(reference, 2500.0))
    assert np.max(np.abs(z - b)) < REL_TOL
    est = lb.cfr(starts, f, np.conj(b), 2500.0)
    err = np.max(np.abs(est * np.vdot(est, cfr) / np.vdot(est, est) - cfr)) / np.max(np.abs(cfr))
    assert err < REL_TOL, err


def test_nbytes_counts_the_starts_and_the_features():
    space, basis, _, _, _, _, features, starts, _ = _setup(0.0, 0.0, windows=20)
    lb = LookBack(space, basis, starts, features, 0.0)
    assert lb.nbytes == starts.nbytes + features.nbytes  # a property: an int, not a method


def test_a_shape_mismatch_is_refused_with_its_message():
    space, basis, _, _, _, _, features, starts, _ = _setup(0.0, 0.0, windows=20)
    msg = f"look-back: 19 starts for features {features.shape}"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        LookBack(space, basis, starts[1:], features, 0.0)
