"""Is a data set whole? A walk over its element headers that finds a file cut short.

pydicom reads a truncated file without complaint: a value cut short is read short, and an
element header cut short ends the data set, so a file cut inside its header or just after the
pixel data tag reads as a smaller, valid-looking instance. The walk reads only element and item
headers (never a value) from the data set's start to where the header reader stopped, and
raises UnreadableFile naming the element that runs past the end of the file.

The fast header reader (Explicit VR Little Endian) refuses every such cut itself, so only the
files pydicom reads are walked: implicit VR, big endian, no preamble, files too large to read
whole.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from trialship.deid.raw_parse import LONG_VRS, PIXEL_TAGS, VRS
from trialship.deid.report import tag_text

_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_META_START = 132
_LONG = frozenset(vr.encode("ascii") for vr in LONG_VRS)
_DELIMITERS = frozenset({_ITEM, _ITEM_END, _SEQUENCE_END})

Read = Callable[[int, int], bytes]
"""`read(offset, count)`: up to `count` bytes of the file from `offset`."""


class Truncated(Exception):
    """The file ends inside an element or an item (the message says where)."""


class Malformed(Truncated):
    """An element header that no writer could have meant: an explicit VR that is no VR, or an
    undefined length holding something other than items. Such a file was misread from there on
    (pydicom reads the bytes that follow as whatever it can), and what it read in the wrong
    place is out of the reach of the rules and the leak check: refused, fail closed."""


def check_whole(read: Read, size: int, stop: int, *, implicit: bool, little: bool) -> None:
    """Raise Truncated unless every element from the data set's start to `stop` (where the
    header reader stopped: the pixel data tag, or the end) lies inside the file's `size` bytes,
    the last one ending at `stop`."""
    walk = _Walk(read, size, "<" if little else ">")
    end = walk.elements(walk.file_meta_end(), stop, implicit=implicit, top=True)
    if end < stop:
        raise Truncated(f"truncated: the file ends inside an element header at byte {end}")


def check_trailing(
    read: Read, size: int, start: int, after: int, *, implicit: bool, little: bool
) -> None:
    """Raise Truncated (or Malformed) unless the elements from `start` (after the pixel data,
    whose tag is `after`) to the end of the file are whole and in ascending order: one placed
    there out of order, or a second PatientID, is a file two readers read two ways."""
    walk = _Walk(read, size, "<" if little else ">")
    walk.elements(start, size, implicit=implicit, after=after)


class _Walk:
    def __init__(self, read: Read, size: int, order: str) -> None:
        self.read, self.size, self.order = read, size, order

    def file_meta_end(self) -> int:
        """Where the data set starts: after the preamble and the group 2 elements, if any."""
        position = _META_START if self.read(128, 4) == b"DICM" else 0
        while True:
            head = self.read(position, 12)
            if len(head) < 8 or struct.unpack("<H", head[:2])[0] != 0x0002:
                return position
            _, length, value = _explicit(position, head, "<")  # (group 2 is always so)
            position = value + length
            if position > self.size:
                raise Truncated("truncated inside the file meta information")

    def elements(
        self,
        position: int,
        end: int,
        *,
        implicit: bool,
        top: bool = False,
        item: bool = False,
        after: int = -1,
    ) -> int:
        """Walk the elements from `position` up to `end` (the stop, or a defined-length item's
        end) or, in an undefined-length `item`, up to its delimiter; the position after them."""
        order = self.order
        previous = after
        while position < end:
            head = self.read(position, 12)
            if len(head) < 8 or position + 8 > end:
                if top:
                    return position  # (check_whole names the cut header)
                raise Truncated(
                    f"truncated: an item ends inside an element header at byte {position}"
                )
            group, element = struct.unpack(order + "HH", head[:4])
            tag = group << 16 | element
            if tag <= previous and tag not in _DELIMITERS:
                # PS3.5 7.1: in ascending order. Out of it, a length before was misread.
                raise Malformed(
                    f"malformed: element {tag_text(tag)} at byte {position} is out of order "
                    f"(after {tag_text(previous)}): a length before it is wrong"
                )
            if tag not in _DELIMITERS:
                previous = tag
            if top and tag in PIXEL_TAGS:
                return position
            if implicit or tag in _DELIMITERS:
                (length,) = struct.unpack(order + "L", head[4:8])
                vr, value = b"", position + 8
            else:
                vr, length, value = _explicit(position, head, order)
            if item and tag == _ITEM_END:
                return value
            if length == _UNDEFINED:
                # An undefined-length UN holds implicit VR little endian (PS3.5 6.2.2).
                position = self._items(value, tag, implicit=implicit or vr == b"UN")
                continue
            position = value + length
            if position > self.size:
                raise Truncated(f"truncated: element {tag_text(tag)} runs past the end of the file")
        if item:
            raise Truncated("truncated: an item of undefined length has no end")
        return position

    def _items(self, position: int, tag: int, *, implicit: bool) -> int:
        """Walk an undefined-length value's items; the position after its delimiter."""
        while True:
            head = self.read(position, 8)
            if len(head) < 8:
                raise Truncated(f"truncated: sequence {tag_text(tag)} has no end")
            group, element, length = struct.unpack(self.order + "HHL", head)
            position += 8
            if group << 16 | element == _SEQUENCE_END:
                return position
            if group << 16 | element != _ITEM:
                raise Malformed(
                    f"malformed: {tag_text(tag)} has an undefined length and holds "
                    f"{tag_text(group << 16 | element)} at byte {position - 8}, not an item"
                )
            if length == _UNDEFINED:
                position = self.elements(position, self.size, implicit=implicit, item=True)
                continue
            position += length
            if position > self.size:
                raise Truncated(f"truncated: an item of {tag_text(tag)} runs past the end")


def _explicit(position: int, head: bytes, order: str) -> tuple[bytes, int, int]:
    """(VR, length, offset of the value) of the explicit VR element header in `head`."""
    vr = head[4:6]
    if vr not in VRS:
        tag = struct.unpack(order + "HH", head[:4])
        raise Malformed(
            f"malformed: element {tag_text(tag[0] << 16 | tag[1])} at byte {position} has no "
            "valid VR (its length is not known, nor what follows it)"
        )
    if vr in _LONG:
        if len(head) < 12:
            raise Truncated("truncated: the file ends inside an element header")
        (length,) = struct.unpack(order + "L", head[8:12])
        return vr, length, position + 12
    (length,) = struct.unpack(order + "H", head[6:8])
    return vr, length, position + 8
