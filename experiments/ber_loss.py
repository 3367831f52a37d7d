"""Where the BER loss goes: the 72 s scenario of ``tests/test_ber.py::test_ber_full_power`` with
parts of the world made ideal, one JSON row per run.

Variants (each received blind unless it says ``seeded``):

``default``
    as a user gets it: every emulator impairment on, blind acquisition.
``ideal``
    ``ScenarioConfig(ideal=True)``: no sample-clock drift, phase noise, IQ imbalance, DC,
    tag duty error or jitter, circuitry (the LO offset and tag clock stay: they are the model).
``seeded``
    impairments on; each side band's reference and CFO installed from the emulator's truth once
    the timing is acquired (experiments.common.seed_side_band_references).
``ideal-seeded``
    both.
``nopn``
    impairments on except the LO phase noise.

A variant that removes a cause removes its share of the loss; the same seed gives the same
packets and thermal noise in every variant.  A window that straddles a tag-symbol edge holds
a fraction ``a`` of one symbol and ``1 - a`` of the next, so a symbol's matched filter collects
``14 + a**2 + (1 - a)**2`` of its 15 windows' energy: ``--straddle`` prints that structural
loss (``a`` uniform), which no variant removes.

    .venv/bin/python -m experiments.ber_loss default 3 [--duration-s 72]
    .venv/bin/python -m experiments.ber_loss --pool runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict

import numpy as np
from scipy.stats import beta, norm

from dsp.receiver import Receiver
from dsp.receiver_config import ReceiverConfig
from dsp.results import PacketResult
from dsp.waveform import get_profile
from experiments.common import STARTUP_WINDOWS, seed_side_band_references
from sdr.emulator.emulator import Emulator
from sdr.emulator.scenario import ScenarioConfig

# the scenario of tests/test_ber.py (its constants, restated: experiments do not import tests)
EBN0_DB = 6.8  # both side bands together, eq. (103)
LEAD_S = 1.0  # blind acquisition's first second left out
PREAMBLE_BITS = 13
D0_TYPED_M = 20.0
VARIANTS = ("default", "ideal", "seeded", "ideal-seeded", "nopn")


def loss_db(ber: float, ebn0_db: float = EBN0_DB) -> float:
    """The Eb/N0 loss at which coherent BPSK theory, ``Q(sqrt(2 Eb/N0))``, gives ``ber``."""
    return ebn0_db - 10 * np.log10(norm.isf(ber) ** 2 / 2)


def straddle_ber(ebn0_db: float = EBN0_DB, windows_per_symbol: int = 15) -> float:
    """BPSK error rate when each symbol's matched filter collects ``W - 1 + a**2 + (1 - a)**2``
    of ``W`` windows' energy, ``a`` uniform in [0, 1] (the tag-symbol edge inside a window)."""
    a = np.linspace(0.0, 1.0, 20_001)
    w = windows_per_symbol
    return float(np.mean(norm.sf(np.sqrt(2 * 10 ** (ebn0_db / 10) * (w - 1 + a**2 + (1 - a) ** 2) / w))))


def run(variant: str, seed: int, duration_s: float) -> dict:
    """One run: packets sent after the lead, found (within a tag symbol of a true start), bit
    errors over the payload and CRC bits of the packets found."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    wf = get_profile("default")
    gain_db = 10 * np.log10(2 * len(wf.active_subcarriers) * wf.ofdm_symbols_per_tag_symbol)
    snr_db = EBN0_DB - gain_db
    kw: dict = {"ideal": variant.startswith("ideal")}
    if variant == "nopn":
        kw["phase_noise"] = False
    sc = ScenarioConfig(
        duration_s=duration_s, seed=seed, snr_lower_db=snr_db, snr_upper_db=snr_db, lo_ppm=3.0,
        tag_clock_ppm=-90.0, **kw,
    )  # fmt: skip
    emu = Emulator(wf, sc)
    tr = emu.truth
    cfg = ReceiverConfig(tx_rx_distance_m=D0_TYPED_M)
    rx = Receiver(wf, list(sc.bands), config=cfg, truth_packets=(tr.packet_start_sample, tr.packet_bits))
    head = STARTUP_WINDOWS * wf.fft_size + 256  # the timing's acquisition, then seed
    pending_seed = variant.endswith("seeded")
    out: list = []
    cpu0 = time.process_time()
    for blk in emu.blocks():
        iq = blk.iq
        if pending_seed and iq.shape[1] > head:
            out += rx.push(iq[:, :head])
            seed_side_band_references(rx, emu)
            pending_seed, iq = False, iq[:, head:]
        out += rx.push(iq)
    out += rx.flush()
    fs = wf.working_rate_hz
    starts = np.asarray(tr.packet_start_sample)
    packet_s = wf.packet_bits * tr.tag_symbol_samples / fs
    sent = np.flatnonzero((starts > LEAD_S * fs) & (starts / fs + packet_s < duration_s - 0.01))
    found: dict[int, PacketResult] = {}
    for r in (r for r in out if isinstance(r, PacketResult)):
        j = int(np.argmin(np.abs(starts - r.start_sample)))
        if abs(starts[j] - r.start_sample) < tr.tag_symbol_samples:
            found[j] = r
    bits_sent = np.asarray(tr.packet_bits)
    hit = [j for j in sent if j in found]
    errors = sum(int(np.sum(found[j].bits[PREAMBLE_BITS:] != bits_sent[j][PREAMBLE_BITS:])) for j in hit)
    bits = len(hit) * (wf.packet_bits - PREAMBLE_BITS)
    return {
        "variant": variant,
        "seed": seed,
        "duration_s": duration_s,
        "sent": len(sent),
        "found": len(hit),
        "errors": errors,
        "bits": bits,
        "ber": errors / bits if bits else None,
        "loss_db": loss_db(errors / bits) if errors else None,
        "cpu_s": time.process_time() - cpu0,
    }


def pool(rows: list[dict]) -> dict[str, dict]:
    """Errors and bits summed per variant, the loss and its 95 % Clopper-Pearson interval."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["variant"]].append(r)
    out = {}
    for v, rs in by.items():
        e, b = sum(r["errors"] for r in rs), sum(r["bits"] for r in rs)
        lo, hi = beta.ppf(0.025, e, b - e + 1), beta.ppf(0.975, e + 1, b - e)
        out[v] = {
            "seeds": [r["seed"] for r in rs],
            "errors": e,
            "bits": b,
            "found": sum(r["found"] for r in rs),
            "sent": sum(r["sent"] for r in rs),
            "loss_db": loss_db(e / b),
            "loss_95_db": (loss_db(lo), loss_db(hi)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", nargs="?", choices=VARIANTS)
    p.add_argument("seed", nargs="?", type=int)
    p.add_argument("--duration-s", type=float, default=72.0)
    p.add_argument("--pool", metavar="JSONL", help="pool the rows of earlier runs, per variant")
    p.add_argument("--straddle", action="store_true", help="the straddling windows' structural loss")
    a = p.parse_args(argv)
    if a.straddle:
        ber = straddle_ber()
        print(json.dumps({"ber": ber, "loss_db": loss_db(ber)}))
    elif a.pool:
        with open(a.pool) as f:
            print(json.dumps(pool([json.loads(line) for line in f if line.strip()]), indent=2))
    elif a.variant is None or a.seed is None:
        p.error("give a variant and a seed, or --pool, or --straddle")
    else:
        print(json.dumps(run(a.variant, a.seed, a.duration_s)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
