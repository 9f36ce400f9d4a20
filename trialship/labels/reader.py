"""A checked view of one TOML table: typed getters, errors naming file and key, no unknown keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trialship.labels.errors import LabelError

_MISSING = object()


class Table:
    """One table of a template file; `finish()` rejects keys nobody asked for (typos)."""

    def __init__(self, source: str, path: str, data: Mapping[str, object]) -> None:
        self.source = source
        self.path = path
        self.data = data
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> LabelError:
        where = f"{self.path}.{key}" if self.path else key
        return LabelError(f"{self.source}: {where}: {message}")

    def _get(self, key: str, default: object) -> object:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, "is required")
        return default

    def number(
        self, key: str, default: float | object | None = _MISSING, *, positive: bool = False
    ) -> float:
        value = self._get(key, _MISSING if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {value!r}")
        if positive and value <= 0:
            raise self.error(key, f"must be greater than 0, not {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be a whole number of at least {minimum}, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def text(self, key: str, default: str | object = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        self._used.add(key)
        return self.text(key) if key in self.data else None

    def text_list(self, key: str) -> tuple[str, ...]:
        value = self._get(key, _MISSING)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a non-empty list of strings")
        return tuple(str(v) for v in value)

    def choice(self, key: str, options: Sequence[str], default: str | object = _MISSING) -> str:
        value = self.text(key, default)
        if value not in options:
            raise self.error(key, f"must be one of {', '.join(options)}, not {value!r}")
        return value

    def table(self, key: str) -> Table:
        value = self._get(key, _MISSING)
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table")
        return Table(self.source, self._child(key), value)

    def optional_table(self, key: str) -> Table | None:
        self._used.add(key)
        return self.table(key) if key in self.data else None

    def tables(self, key: str, *, required: bool = False) -> list[Table]:
        value = self._get(key, _MISSING if required else [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.error(key, f"must be an array of tables ([[{key}]])")
        if required and not value:
            raise self.error(key, "needs at least one entry")
        return [Table(self.source, f"{self._child(key)}[{i}]", v) for i, v in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt?)")

    def _child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key
