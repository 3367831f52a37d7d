"""Latency of one NOMP first-path estimate (dsp.ranging.nomp, nomp_product), for the ``bench`` command."""

from __future__ import annotations

import statistics
import time

import numpy as np

from dsp.crlb import compound_model, model_cfr, noise_var_for_snr
from dsp.ranging import get_method
from dsp.waveform import WaveformConfig
from sdr.emulator.geometry import draw_paths
from sdr.emulator.scenario import ScenarioConfig

TARGET_LATENCY_S = 0.05
SNR_DB = 28.0  # per subcarrier of a 1500-symbol CW epoch at the ranging sweep's top SNR


def nomp_latency(
    wf: WaveformConfig, n_nlos: int = 8, scenarios: int = 10, seed: int = 0, method_name: str = "nomp"
) -> dict:
    """Median wall time of one NOMP estimate on compound backscatter CFRs ``[subcarrier]``.

    ``scenarios`` geometric scenarios with ``n_nlos`` NLoS paths per channel (SYSTEM.md
    section 9; 8 gives 81 compound paths), upper band, at :data:`SNR_DB`; one warm-up call,
    then each CFR timed three times.  Returns seconds (median, max) and the model orders; wall
    time and this process's CPU time (``median_cpu_s``: on a shared machine the wall time also
    counts the other processes' load, the CPU time does not).  ``method_name="nomp_product"``
    times its side-band estimate (NOMP, then the product-form refinement), the one the receiver
    makes per epoch; the orders are then NOMP's compound ones, fitted once more after the timing.
    """
    method = get_method(method_name, wf)
    side = getattr(method, "product_sides", False)

    def estimate(h: np.ndarray) -> int | None:
        """One timed estimate; NOMP's model order where the estimate gives it."""
        if side:
            method.side_delay_and_std_s(h[None])
            return None
        return method.fit(h).order

    rng = np.random.default_rng(seed)
    f = wf.active_freqs_hz
    cfrs = []
    for s in range(scenarios):
        _, tx_tag, tag_rx = draw_paths(ScenarioConfig(n_nlos=n_nlos), wf, np.random.default_rng([seed, s]))[
            :3
        ]
        tau, a = compound_model(tx_tag, tag_rx, wf, "upper")
        h = model_cfr(f, tau - tau[0] + 1e-6, a)
        var = noise_var_for_snr(h, SNR_DB)
        cfrs.append(h + np.sqrt(var / 2) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)))
    estimate(cfrs[0])  # warm-up
    times, cpu, orders = [], [], []
    for h in cfrs:
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            order = estimate(h)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        orders.append(method.fit(h).order if order is None else order)
    return {
        "method": method_name,
        "subcarriers": int(f.size),
        "n_nlos": n_nlos,
        "snr_db": SNR_DB,
        "estimates": len(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "median_cpu_s": statistics.median(cpu),
        "median_order": float(np.median(orders)),
        "target_s": TARGET_LATENCY_S,
    }
