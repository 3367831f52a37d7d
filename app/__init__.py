"""The application layer: what a command does, with no argument parsing and no printing of results.

``app.session`` turns receiver settings into a configured, calibrated
:class:`dsp.receiver.Receiver` (the one place one is built); ``app.run`` runs one over
chunks and summarises it; ``app.replay`` does both for a capture file; ``app.stream`` sends
a source (``sdr/source_registry.py``) to the pipeline and turns signals into a stop event;
``app.calibrate`` runs a CW calibration from any source.  The command shells
(``backscatter/commands``), the GUI and the sweeps call these.  See docs/ARCHITECTURE.md.
"""
