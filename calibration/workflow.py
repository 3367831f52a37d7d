"""The CW calibration run: a source's IQ through a CW-mode receiver into a :class:`Calibration`.

Also the settings a calibration is checked against, read from a source, a capture or a stream
header, and :func:`apply_calibration` which loads a file and refuses it for other settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from calibration.estimate import CalibrationAccumulator
from calibration.store import BandSetting, Calibration, CalibrationError, RadioSettings, load_calibration
from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import RangingEpoch
from dsp.waveform import WaveformConfig


def settings_from_source(source: Any) -> RadioSettings:
    """Settings of an ``sdr.sources.IQSource`` (gains, antennas and serial where it knows them)."""
    gains: dict[str, tuple[float | None, str | None]] = {}
    radio = getattr(source, "radio", None)
    if radio is not None:  # the UHD source's RadioConfig
        gains = {c.band: (float(c.gain_db), str(c.antenna)) for c in radio.channels}
    cap = getattr(source, "_cap", None)
    if cap is not None:  # a replayed capture
        gains = {c.band: (float(c.gain_db), c.antenna or None) for c in cap.channels}
    bands = tuple(
        BandSetting(b, float(f), *gains.get(b, (None, None)))
        for b, f in source.channels  # (band, rf_center_hz)
    )
    serial = (getattr(source, "device_info", None) or {}).get("serial")
    return RadioSettings(source.waveform, float(source.capture_rate_hz), bands, serial)


def settings_from_capture(cap: Any) -> RadioSettings:
    """Settings of an open capture (``captures.reader.Capture``)."""
    bands = tuple(
        BandSetting(c.band, float(c.center_freq_hz), float(c.gain_db), c.antenna or None)
        for c in cap.channels
    )
    return RadioSettings(cap.waveform, float(cap.capture_rate_hz), bands, None)


def settings_from_header(h: Any) -> RadioSettings:
    """Settings of a stream, from an IQ header (``sdr.transport.IQHeader``)."""
    bands = tuple(BandSetting(c.band, float(c.rf_center_hz)) for c in h.channels)
    return RadioSettings(h.waveform, float(h.capture_rate_hz), bands, None)


def apply_calibration(path: str | Path, settings: RadioSettings, where: str) -> dict:
    """Load ``path``, check it against ``settings`` and return the receiver's keyword arguments."""
    cal = load_calibration(path)
    try:
        cal.check(settings, where)
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: refused: {exc}") from None
    return cal.receiver_kwargs()


def calibrate(
    chunks: Iterable[tuple[np.ndarray, int]],
    settings: RadioSettings,
    known_range_m: float,
    tx_rx_distance_m: float,
    duration_s: float,
    *,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    source: str = "",
) -> Calibration:
    """Measure the circuitry responses from ``duration_s`` of CW-mode IQ ``(iq[channel, sample], lost)``.

    ``progress`` receives a ``calibration`` message's fields (``sdr/MESSAGES.md``) after every
    epoch.  Raises :class:`CalibrationError` when no usable epoch came out (no tag signal).
    """
    wf: WaveformConfig = settings.waveform
    if not known_range_m > tx_rx_distance_m >= 0:
        raise CalibrationError(
            f"known range {known_range_m} m must exceed the TX-RX distance {tx_rx_distance_m} m "
            "(the TX-tag-RX path is longer than the direct one)"
        )
    bands = [b.band for b in settings.bands]
    cfg = ReceiverConfig(tag_mode="cw", methods=("ir_first",), tx_rx_distance_m=tx_rx_distance_m)
    # the one receiver not built by app.session.open_receiver: calibration sits a floor below the
    # application layer, and this one must be uncalibrated, CW and without truth (what it measures)
    rx = Receiver(wf, bands, settings.capture_rate_hz, cfg)
    acc = CalibrationAccumulator(wf, tx_rx_distance_m, known_range_m)
    history: list[list[float]] = []
    target = round(duration_s * settings.capture_rate_hz)
    seen = 0

    def consume(results: list) -> None:
        for r in results:
            if not isinstance(r, RangingEpoch) or any(b not in r.cfr for b in bands):
                continue
            gd = acc.add(r.cfr, r.snr_db, r.n_symbols)
            history.append([gd[b] for b in bands])
            if progress is not None:
                now = acc.result()
                progress(
                    {
                        "time_s": float(r.time_s),
                        "state": "running",
                        "progress": min(seen / target, 1.0),
                        "symbols": int(acc.symbols),
                        "group_delay_s": gd,
                        "ripple_deg": now["quality"]["ripple_deg"],
                        "snr_db": {b: float(r.snr_db[b]) for b in bands},
                        "d_cal_m": now["d_cal_m"],
                        "file": None,
                        "message": f"epoch {acc.epochs}",
                    }
                )

    for iq, lost in chunks:
        take = min(iq.shape[1], target - seen)
        consume(rx.push(iq[:, :take], lost))
        seen += take
        if seen >= target or (should_stop is not None and should_stop()):
            break
    consume(rx.flush())
    if acc.epochs == 0:
        raise CalibrationError(
            f"no calibration epoch in {seen / settings.capture_rate_hz:.3g} s of signal: is the tag in CW "
            "mode and its side bands above the noise? (a longer --duration-s helps at low SNR)"
        )
    res = acc.result()
    return Calibration(
        settings,
        res["response"],
        res["group_delay_s"],
        res["d_cal_m"],
        known_range_m,
        tx_rx_distance_m,
        res["quality"],
        np.asarray(history),
        source,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
