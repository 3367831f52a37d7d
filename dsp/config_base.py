"""Frozen, validated configuration dataclasses shared across the package.

Every configuration (waveform, scenario, radio, receiver) is a frozen dataclass
that validates itself on construction, rejects unknown keys when built from a
mapping, and serialises losslessly to JSON and to HDF5 attributes.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from dsp.errors import BackscatterError

JSON_PREFIX = "json:"


class ConfigError(BackscatterError, ValueError):
    """A configuration value is missing, unknown or impossible.

    The message names the configuration class, the field and the value.
    """


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(cls_name: str, name: str, hint: Any, value: Any) -> Any:
    """Coerce a JSON / HDF5 value to the annotated type, or raise ConfigError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    try:
        if origin is typing.Union or (origin is not None and type(None) in args):
            if value is None:
                return None
            inner = next(a for a in args if a is not type(None))
            return _coerce(cls_name, name, inner, value)
        if origin is tuple:
            seq = list(value.tolist() if hasattr(value, "tolist") else value)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(cls_name, name, args[0], v) for v in seq)
            if len(seq) != len(args):
                raise ConfigError(
                    f"{cls_name}.{name}: expected {len(args)} values, got {len(seq)} ({value!r})"
                )
            return tuple(_coerce(cls_name, name, a, v) for a, v in zip(args, seq, strict=True))
        if hint is bool:
            if isinstance(value, (bool, int, np.bool_)):
                return bool(value)
            raise ConfigError(f"{cls_name}.{name}: expected a boolean, got {value!r}")
        if hint is int:
            if isinstance(value, bool):
                raise ConfigError(f"{cls_name}.{name}: expected an integer, got {value!r}")
            f = float(value)
            if f != int(f):
                raise ConfigError(f"{cls_name}.{name}: expected an integer, got {value!r}")
            return int(f)
        if hint is float:
            if isinstance(value, bool):
                raise ConfigError(f"{cls_name}.{name}: expected a number, got {value!r}")
            return float(value)
        if hint is str:
            if isinstance(value, bytes):
                value = value.decode()
            if not isinstance(value, str):
                raise ConfigError(f"{cls_name}.{name}: expected a string, got {value!r}")
            return value
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{cls_name}.{name}: cannot use {value!r}: {exc}") from None
    return value


class ConfigBase:
    """Mixin for frozen dataclasses: ``from_dict``, ``to_dict``, JSON, HDF5 attrs.

    Subclasses implement ``_validate`` and call ``self._fail(field, msg)``.  A field
    that was renamed lists ``{old key: new key}`` in ``RENAMED_KEYS``: ``from_dict``
    (and so JSON and HDF5 attributes) reads an old key as the new one, so files
    written before the rename still load; every other unknown key is refused.
    """

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        hints = _field_types(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            coerced = _coerce(type(self).__name__, f.name, hints[f.name], value)
            object.__setattr__(self, f.name, coerced)
        self._validate()

    def _validate(self) -> None:  # pragma: no cover - overridden
        pass

    def _fail(self, field: str, message: str) -> typing.NoReturn:
        value = getattr(self, field, None)
        raise ConfigError(f"{type(self).__name__}.{field} = {value!r}: {message}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Self | None = None) -> Self:
        """Build from a mapping; unknown keys are refused; missing keys come from ``base``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        data = cls._renamed(data)
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        if base is not None:
            return dataclasses.replace(base, **dict(data))  # type: ignore[type-var]
        return cls(**dict(data))

    @classmethod
    def _renamed(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """``data`` with every old key in ``RENAMED_KEYS`` replaced by its new name."""
        old = [k for k in cls.RENAMED_KEYS if k in data]
        if not old:
            return data
        out = dict(data)
        for k in old:
            new = cls.RENAMED_KEYS[k]
            if new in out:
                raise ConfigError(
                    f"{cls.__name__}: key {k!r} is the old name of {new!r}; give one of them, not both"
                )
            out[new] = out.pop(k)
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__}: invalid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_h5_attrs(self, attrs: Any) -> None:
        """Write every field as one HDF5 attribute.

        Scalars and flat numeric tuples are written as they are; ``None`` and nested
        values are written as a string ``"json:" + json.dumps(value)``.
        """
        for k, v in self.to_dict().items():
            flat = isinstance(v, list) and all(isinstance(e, (int, float)) for e in v) and v
            if isinstance(v, (bool, int, float, str)) or flat:
                attrs[k] = v
            else:
                attrs[k] = JSON_PREFIX + json.dumps(v)

    @classmethod
    def from_h5_attrs(cls, attrs: Mapping[str, Any], base: Self | None = None) -> Self:
        data = {}
        for k, v in attrs.items():
            if hasattr(v, "tolist"):
                v = v.tolist()
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, str) and v.startswith(JSON_PREFIX):
                try:
                    v = json.loads(v[len(JSON_PREFIX) :])
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{cls.__name__}.{k}: invalid JSON attribute: {exc}") from None
            data[k] = v
        return cls.from_dict(data, base=base)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
