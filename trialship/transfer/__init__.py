"""Senders with one shape: SFTP, DICOM C-STORE, DICOMweb."""
