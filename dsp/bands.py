"""The band vocabulary: the one definition of the three channel names and their orders.

``central`` is the direct TX-RX signal at the illuminator's carrier (the timing reference);
``lower`` and ``upper`` are the tag's side bands, shifted by its square-wave clock.
"""

from __future__ import annotations

CENTRAL = "central"
LOWER = "lower"
UPPER = "upper"
BANDS = (CENTRAL, LOWER, UPPER)  # channel order: the emulator's, the wire's, the capture's default
SIDE_BANDS = (LOWER, UPPER)  # the tag's bands (the ranging and demodulation inputs)
RF_ORDER = (LOWER, CENTRAL, UPPER)  # by carrier frequency (plots)
