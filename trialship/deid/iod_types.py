"""Attribute Types (1, 2) that decide combined Annex E codes such as X/Z/D.

PS3.15 E.1.1 says: use the first letter of a combined code unless a later one is needed for IOD
conformance. The engine does not know the exact IOD of every instance, so it uses the Types these
attributes have in the modules shared by the common image IODs (CT, MR, PET, CR/DX, US, SC, XA) and
in the SR and presentation-state modules that carry the combined codes:

- PS3.3 C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1 General Series, C.7.4.1 Frame of Reference,
  C.7.6.1 General Image, C.7.6.4 Contrast/Bolus, C.7.6.14 Acquisition Context, C.12.1 SOP Common,
  C.11.10 Presentation State Identification, C.17.2 SR Document General (edition 2024b).
- Conditional Types (1C, 2C) count as their letter: if the attribute is present at all, the
  condition that put it there most likely holds.

An attribute not listed is Type 3 (optional), so the first letter of the code applies.
"""

from __future__ import annotations

IOD_TYPES: dict[str, str] = {
    # Patient module
    "PatientName": "2",
    "PatientID": "2",
    "PatientBirthDate": "2",
    "PatientSex": "2",
    # General Study module
    "StudyInstanceUID": "1",
    "StudyDate": "2",
    "StudyTime": "2",
    "ReferringPhysicianName": "2",
    "StudyID": "2",
    "AccessionNumber": "2",
    # General Series, Frame of Reference, General Image, SOP Common
    "Modality": "1",
    "SeriesInstanceUID": "1",
    "SeriesNumber": "2",
    "FrameOfReferenceUID": "1",
    "InstanceNumber": "2",
    "ContentDate": "2",
    "ContentTime": "2",
    "SOPClassUID": "1",
    "SOPInstanceUID": "1",
    # Contrast/Bolus and Acquisition Context modules
    "ContrastBolusAgent": "2",
    "AcquisitionContextSequence": "2",
    # Presentation State Identification module
    "ContentCreatorName": "2",
    # SR Document General module
    "VerifyingObserverName": "1",
    "VerifyingOrganization": "1",
    "VerifyingObserverIdentificationCodeSequence": "2",
    # Clinical Trial Subject/Study/Series modules (the engine rewrites these afterwards)
    "ClinicalTrialSponsorName": "1",
    "ClinicalTrialProtocolID": "1",
    "ClinicalTrialProtocolName": "2",
    "ClinicalTrialSiteID": "2",
    "ClinicalTrialSiteName": "2",
    "ClinicalTrialTimePointID": "2",
    "ClinicalTrialCoordinatingCenterName": "2",
}


def iod_type(keyword: str) -> str:
    """'1', '2' or '3' for an attribute keyword (see the module docstring for the source)."""
    return IOD_TYPES.get(keyword, "3")
