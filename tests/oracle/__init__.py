"""An independent reference synthesiser: the test oracle of issue 19.

Written from ``SYSTEM.md``, ``docs/AIR_INTERFACE.md`` and ``captures/FORMAT.md``
alone.  It imports numpy, scipy and h5py only, never the project's packages
(``tests/test_oracle.py`` checks this), so a convention error shared by the
emulator and the receiver shows up here.  One module per job:

* :mod:`.waveform` the numerology and the Zadoff-Chu illumination symbol;
* :mod:`.packet` packet bits, CRC-16/CCITT-FALSE and BPSK;
* :mod:`.channel` path lists, their CFRs per band and the noiseless CIR;
* :mod:`.synth` the band-limited periodic waveform at arbitrary (stretched) times;
* :mod:`.writer` the HDF5 capture writer;
* :mod:`.scenario` a scenario and the capture it makes, with its ground truth.
* :mod:`.campaign` issue 13's targets on the oracle's captures, the receiver run through
  ``backscatter replay`` in a subprocess (``python -m tests.oracle.campaign --out DIR``).
"""
