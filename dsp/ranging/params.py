"""Typed, validated parameters of the ranging methods (one frozen dataclass per method).

Every :class:`~dsp.ranging.base.RangingMethod` names its parameter class in
``Params``; :func:`dsp.ranging.get_method` builds it from keyword arguments, the
receiver from ``ReceiverConfig.method_params`` and the sweeps from ``--set
method_params=...``.  Each field carries its documentation and its admissible
range in the dataclass field metadata, which :func:`describe` lists
(``backscatter methods``).  Errors name the method, the parameter and the value.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from dsp.config_base import ConfigBase, ConfigError


def param(default: Any, doc: str, range_text: str = "") -> Any:
    """A parameter field: its default, one line of documentation and its range in words."""
    return dataclasses.field(default=default, metadata={"doc": doc, "range": range_text})


@dataclasses.dataclass(frozen=True)
class MethodParams(ConfigBase):
    """Parameters of a method that has none; subclasses add fields made with :func:`param`."""

    method: ClassVar[str] = ""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ConfigError as exc:
            raise ConfigError(f"ranging method {self.method!r}: {exc}") from None

    def _check_range(
        self, name: str, lo: float | None = None, hi: float | None = None, *, open_lo: bool = False
    ) -> None:
        """Fail unless ``lo <= value <= hi`` (``lo < value`` when ``open_lo``), finite."""
        v = getattr(self, name)
        ok = v == v and abs(v) != float("inf")
        if lo is not None:
            ok = ok and (v > lo if open_lo else v >= lo)
        if hi is not None:
            ok = ok and v <= hi
        if not ok:
            self._fail(name, f"must be in {self.range_of(name)}")

    @classmethod
    def range_of(cls, name: str) -> str:
        return next(f.metadata.get("range", "") for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Self | None = None) -> Self:
        if not isinstance(data, Mapping):
            raise ConfigError(f"ranging method {cls.method!r}: parameters must be a mapping, got {data!r}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            known = sorted(cls.field_names())
            raise ConfigError(
                f"ranging method {cls.method!r}: unknown parameter(s) {unknown}; known: {known}"
            )
        return super().from_dict(data, base)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One ``{name, type, default, range, doc}`` entry per parameter."""
        hints = typing.get_type_hints(cls)
        return [
            {
                "name": f.name,
                "type": getattr(hints[f.name], "__name__", str(hints[f.name])),
                "default": f.default,
                "range": f.metadata.get("range", ""),
                "doc": f.metadata.get("doc", ""),
            }
            for f in dataclasses.fields(cls)
        ]


def describe_methods() -> dict[str, dict[str, Any]]:
    """Every registered method: its one-line summary and its parameters (:meth:`MethodParams.describe`)."""
    from dsp.ranging.base import REGISTRY

    return {
        name: {
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "parameters": cls.Params.describe(),
        }
        for name, cls in sorted(REGISTRY.items())
    }


def validate_method_params(
    params: Mapping[str, Any], methods: tuple[str, ...] | None = None
) -> dict[str, dict]:
    """``{method: {parameter: value}}`` checked against each method's ``Params``; returns plain dicts.

    Raises :class:`ConfigError` naming the method, the parameter and the value.
    """
    from dsp.ranging.base import REGISTRY

    if not isinstance(params, Mapping):
        raise ConfigError(f"method_params must map method -> {{parameter: value}}, got {params!r}")
    out = {}
    for name, values in params.items():
        if name not in REGISTRY:
            raise ConfigError(f"unknown ranging method {name!r}; known: {sorted(REGISTRY)}")
        checked = REGISTRY[name].Params.from_dict(values)
        out[str(name)] = {k: getattr(checked, k) for k in values}
    return out
