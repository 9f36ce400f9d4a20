"""pydicom datasets built without running their constructors: the same attributes, same values.

`Dataset.__init__` sets about a dozen attributes, each through `Dataset.__setattr__` (Python that
first asks whether the name is a DICOM keyword); reading one header builds four datasets and one
per sequence item, which cost more than parsing their elements. The attributes a constructor
sets are the same every time but for the elements and the parent encoding, so they are taken
once from a dataset it built and copied into each new one; mutable ones (the constructor's empty
dicts) are copied, so no two datasets share them. Built again when pydicom's `_use_future`
changes what the constructor sets.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydicom import config
from pydicom.dataset import Dataset, FileDataset

_D = TypeVar("_D", bound=Dataset)
_Template = tuple[dict[str, Any], tuple[tuple[str, Any], ...]]
_TEMPLATES: dict[tuple[type, bool], _Template] = {}
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple)


def _template(cls: type[Dataset]) -> _Template:
    key = (cls, config._use_future)
    found = _TEMPLATES.get(key)
    if found is None:
        # FileDataset's constructor needs a file: its Dataset part is Dataset's (the rest, see
        # `intake.header_reader`).
        probe = Dataset() if cls is FileDataset else cls()
        attrs = dict(probe.__dict__)
        del attrs["_dict"]
        mutable = []
        for name, value in list(attrs.items()):
            if isinstance(value, dict | list | set):
                mutable.append((name, value))
                del attrs[name]
            elif not isinstance(value, _IMMUTABLE):
                raise TypeError(f"cannot copy {cls.__name__}.{name}")  # a pydicom of its own
        found = _TEMPLATES[key] = (attrs, tuple(mutable))
    return found


def new_dataset(cls: type[_D], elements: dict[Any, Any], parent_encoding: Any) -> _D:
    """`cls(elements, parent_encoding=parent_encoding)` for Dataset or FileMetaDataset (whose
    group 2 check the caller has made: only group 2 elements); for FileDataset, the attributes
    `Dataset.__init__` sets (the caller sets FileDataset's own)."""
    attrs, mutable = _template(cls)
    ds = cls.__new__(cls)
    state = ds.__dict__
    state.update(attrs)
    for name, value in mutable:
        state[name] = value.copy()
    state["_dict"] = elements
    state["_parent_encoding"] = parent_encoding
    return ds
