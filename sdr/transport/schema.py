"""The result-field schema (per result kind) and the type predicates shared by encoder and decoder."""

from __future__ import annotations

from typing import Any


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# A tiny schema language for result fields: "num", "int", "bool", "str", "bits", a tuple of
# alternatives, ("list", T), ("dict", T) (string keys), ("pair", T) (a list of two T).
_NUM_OR_NULL = ("num", None)
_PER_BAND = ("dict", _NUM_OR_NULL)
_RESULT_SCHEMA: dict[str, dict[str, Any]] = {
    "packet": {
        "start_sample": "num",
        "tag_id": "int",
        "bits": "bits",
        "crc_ok": "bool",
        "detection": "num",
        "ebn0_db": "num",
        "bit_errors": ("int", None),
    },
    "epoch": {
        "n_symbols": "int",
        "bands": ("list", "str"),
        "range_m": _PER_BAND,
        "range_band_m": ("dict", _PER_BAND),
        "delay_s": ("dict", _PER_BAND),
        "snr_db": _PER_BAND,
        "cfo_hz": _PER_BAND,
        "range_true_m": _NUM_OR_NULL,
        "cir_step_m": "num",
    },
    "stats": {
        "symbols": "int",
        "timing_offset": "int",
        "cfo_hz": _PER_BAND,
        "noise_var": _PER_BAND,
        "acquired": ("dict", "bool"),
        "timing_drift_ppm": _NUM_OR_NULL,
        "timing_drift_measured_ppm": _NUM_OR_NULL,
        "timing_error_samples": _NUM_OR_NULL,
        "timing_locked": ("bool", None),
    },
    "gap": {"index": "int", "samples_lost": "int"},
    "health": {
        "throughput_sps": "num",
        "realtime_factor": "num",
        "queue_depth": "int",
        "messages_received": "int",
        "messages_dropped": ("dict", "int"),
        "samples_lost": "int",
        "gaps": "int",
        "stream_state": ("enum", ("waiting", "live", "stalled")),
    },
    "spectrum": {"bands": ("list", "str"), "freq_hz": ("dict", ("pair", "num"))},
    "calibration": {
        "state": ("enum", ("running", "done", "failed")),
        "progress": "num",
        "symbols": "int",
        "group_delay_s": _PER_BAND,
        "ripple_deg": _PER_BAND,
        "snr_db": _PER_BAND,
        "d_cal_m": _PER_BAND,
        "file": ("str", None),
        "message": "str",
    },
}


# Fields added to version 1 after it began: checked where present, absent from older senders
# (so a message from an older worker still decodes, and an older consumer ignores them).
_OPTIONAL_SCHEMA: dict[str, dict[str, Any]] = {
    "health": {"behind": "bool", "backlog_s": "num"},
}


def _conforms(v: Any, t: Any) -> bool:
    if t is None:
        return v is None
    if isinstance(t, str):
        if t == "num":
            return _is_num(v)
        if t == "int":
            return _is_int(v)
        if t == "bool":
            return isinstance(v, bool)
        if t == "str":
            return isinstance(v, str)
        if t == "bits":
            return isinstance(v, list) and all(_is_int(b) and b in (0, 1) for b in v)
        raise AssertionError(t)
    head = t[0]
    if head == "list":
        return isinstance(v, list) and all(_conforms(e, t[1]) for e in v)
    if head == "dict":
        return isinstance(v, dict) and all(_conforms(e, t[1]) for e in v.values())
    if head == "pair":
        return isinstance(v, list) and len(v) == 2 and all(_conforms(e, t[1]) for e in v)
    if head == "enum":
        return isinstance(v, str) and v in t[1]
    return any(_conforms(v, alt) for alt in t)
