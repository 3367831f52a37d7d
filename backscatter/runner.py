"""Moved to :mod:`app.run`; this name stays for older imports."""

from app.run import Run, direct_path_watch, implausible_ranges, receive, summarise

__all__ = ["Run", "direct_path_watch", "implausible_ranges", "receive", "summarise"]
