"""The JSON form of the models, produced by a cattrs converter rather than hand-written dicts.

`to_json_dict(model)` is what the CLI prints with `--json` and what site software can store;
`from_json_dict(cls, data)` reads it back. The partner's raw payload stays out unless asked for.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

import attrs
import cattrs

from pimms_core.models import PluginRef

T = TypeVar("T")

converter = cattrs.Converter()
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
converter.register_unstructure_hook(frozenset, sorted)
converter.register_unstructure_hook_func(
    lambda cls: isinstance(cls, type) and issubclass(cls, Enum), lambda member: member.value
)


def to_json_dict(model: Any, *, include_raw: bool = False) -> dict[str, Any]:
    """A model as a JSON-ready dict; `plugin` is flattened to `plugin` and `plugin_version`."""
    data: dict[str, Any] = converter.unstructure(model)
    if not include_raw:
        data.pop("raw", None)
    plugin = getattr(model, "plugin", None)
    if isinstance(plugin, PluginRef):
        data["plugin"] = plugin.name
        data["plugin_version"] = plugin.version
    return data


def from_json_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Read back a model written by `to_json_dict` (the plugin attribution is not restored)."""
    fields = {f.name for f in attrs.fields(cls)}  # type: ignore[arg-type]
    kept = {k: v for k, v in data.items() if k in fields and k not in ("plugin", "raw")}
    return converter.structure(kept, cls)
