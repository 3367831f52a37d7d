"""Name-to-kind registry of IQ sources, shaped like the ranging registry (``dsp/ranging/base.py``).

A *kind* is a :class:`SourceKind` subclass: its ``name`` (what ``--source`` takes), a frozen
``Settings`` dataclass (what a user chooses about the source; units in the field names),
:meth:`SourceKind.settings_from_args` (the one function that reads those settings from a parsed
command line), :meth:`SourceKind.open` (settings -> an :class:`~sdr.sources.IQSource`) and,
when the kind has flags of its own, :meth:`SourceKind.add_args` (an argument group that every
command offering the kind shows, :func:`add_source_args`).  Defining the subclass registers it
in :data:`REGISTRY`.

Registration: each module named in :data:`SOURCE_MODULES` defines kinds; they are imported on the
first look-up (:func:`get_kind`, :func:`source_names`), so a kind's module may import this one.
A new SDR is one module (the source class and its kind) plus its name in :data:`SOURCE_MODULES`;
``stream``, ``calibrate``, the streamer and the recorder then take it.

What the streamer and the commands need to know about a kind beyond the ``IQSource`` protocol
is on the kind: ``emulated`` (it emulates the scenario of the scenario flags), ``live`` (the
source delivers samples in real time, so it is never paced, unless the source says otherwise
with its own ``is_live``), ``wrap_errors`` (errors raised while streaming that a user should see
as ``--source NAME: ...``), ``offered`` (a ``--source`` choice, not one picked by other flags),
``restreamable`` (``backscatter stream`` may send it on) and ``takes_file``.
"""

from __future__ import annotations

import argparse
import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dsp.errors import BackscatterError

if TYPE_CHECKING:
    from sdr.sources import IQSource

DEFAULT_CHUNK_SAMPLES = 1 << 18  # 8.5 ms at 30.72 MS/s: one emulator block, 3 MiB of 3-band sc16

#: modules that define source kinds, in the order of the ``--source`` choices (the registration)
SOURCE_MODULES: tuple[str, ...] = ("sdr.sources", "sdr.loop_source", "sdr.uhd_cli", "sdr.stream_source")

REGISTRY: dict[str, type[SourceKind]] = {}


class SourceError(BackscatterError, ValueError):
    """A source cannot be built from the settings or flags given (the message says which)."""


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """What a user chooses about one source; every kind's ``Settings`` derives from it.

    ``kind`` (a class attribute) names the :class:`SourceKind` that opens it.
    """

    kind: ClassVar[str] = ""


class SourceKind(ABC):
    """One kind of IQ source.  Subclasses set ``name`` and ``Settings`` and implement the two
    class methods; see the module docstring for the other class attributes."""

    name: ClassVar[str]
    Settings: ClassVar[type[SourceSettings]] = SourceSettings
    emulated: ClassVar[bool] = False
    live: ClassVar[bool] = False
    offered: ClassVar[bool] = True
    restreamable: ClassVar[bool] = True
    takes_file: ClassVar[bool] = False
    wrap_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if getattr(cls, "name", None):
            REGISTRY[cls.name] = cls

    @classmethod
    def add_args(cls, p: argparse.ArgumentParser) -> None:
        """The kind's own flags, in an argument group of ``p`` (default: none)."""
        return None

    @classmethod
    @abstractmethod
    def settings_from_args(
        cls, args: Any, *, scenario_defaults: Mapping[str, object] | None = None
    ) -> SourceSettings:
        """The settings a parsed command line (an ``argparse.Namespace``) asks for.

        ``scenario_defaults``: ``ScenarioConfig`` values under the scenario file and flags (only
        kinds that emulate read them).  Raises :class:`SourceError` (or another
        ``BackscatterError``) naming the flag.
        """

    @classmethod
    @abstractmethod
    def open(cls, settings: Any, stop: threading.Event | None = None) -> IQSource:
        """The source ``settings`` describe.  ``stop``: set by a signal; a source that takes
        long to build (a loop being generated) then gives up with ``KeyboardInterrupt``."""


def _load() -> None:
    for module in SOURCE_MODULES:
        importlib.import_module(module)


def get_kind(name: str) -> type[SourceKind]:
    """The kind registered as ``name`` (``SourceError`` naming the known ones otherwise)."""
    _load()
    try:
        return REGISTRY[name]
    except KeyError:
        raise SourceError(f"unknown source {name!r}; known: {sorted(REGISTRY)}") from None


def source_names(*, restream: bool = False) -> list[str]:
    """The ``--source`` choices, in registration order; ``restream``: only those
    ``backscatter stream`` can send on."""
    _load()
    return [n for n, k in _ordered() if k.offered and (k.restreamable or not restream)]


def _ordered() -> list[tuple[str, type[SourceKind]]]:
    """The kinds in the order of :data:`SOURCE_MODULES` (whatever was imported first), then
    in the order they were defined."""
    rank = {m: i for i, m in enumerate(SOURCE_MODULES)}
    items = list(REGISTRY.items())
    return sorted(items, key=lambda item: (rank.get(item[1].__module__, len(rank)), items.index(item)))


def add_source_args(p: argparse.ArgumentParser, *, restream: bool = False) -> None:
    """The flags of every kind :func:`source_names` offers (``restream``: as it says there)."""
    for name in source_names(restream=restream):
        REGISTRY[name].add_args(p)


def settings_from_args(args: Any, *, scenario_defaults: Mapping[str, object] | None = None) -> SourceSettings:
    """The settings of the source ``args.source`` names, from the rest of ``args``."""
    kind = get_kind(args.source)
    if getattr(args, "file", None) is not None and not kind.takes_file:
        takers = " or ".join(n for n, k in _ordered() if k.takes_file)
        raise SourceError(f"--file is only for --source {takers}, not {args.source}")
    return kind.settings_from_args(args, scenario_defaults=scenario_defaults)


def kind_of(settings: SourceSettings) -> type[SourceKind]:
    """The kind that opens ``settings``."""
    return get_kind(settings.kind)


def open_source(settings: SourceSettings, stop: threading.Event | None = None) -> IQSource:
    """The source ``settings`` describe (see :meth:`SourceKind.open`)."""
    return kind_of(settings).open(settings, stop)
