"""Where a trial's exams are delivered: SFTP, DICOM C-STORE and DICOMweb destinations.

Secrets (private key, password, auth header) are stored Fernet-encrypted and never shown back.
An SFTP host key is trusted only after a trial admin confirms the fingerprint shown at first
contact: until then it waits in the `pending_host_key_*` columns.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trialship.registry.models import Base, Trial, _enum, utcnow

DEFAULT_REMOTE_PATH = "{protocol_id}/{site_id}/{subject_id}/{timepoint_id}/"


class DestinationKind(enum.StrEnum):
    SFTP = "sftp"
    """Files uploaded over SSH."""
    DICOM = "dicom"
    """Instances sent with C-STORE."""
    DICOMWEB = "dicomweb"
    """Instances posted with STOW-RS."""


class Destination(Base):
    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("trial_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[DestinationKind] = mapped_column(_enum(DestinationKind))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Only an admin may set this; every change is audited.
    allow_identified: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(Integer, default=0)
    # SFTP
    username: Mapped[str] = mapped_column(String(128), default="")
    auth: Mapped[str] = mapped_column(String(10), default="")  # key | password
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    public_key: Mapped[str] = mapped_column(Text, default="")
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    host_key_type: Mapped[str | None] = mapped_column(String(64))
    host_key_base64: Mapped[str | None] = mapped_column(Text)
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(100))
    pending_host_key_type: Mapped[str | None] = mapped_column(String(64))
    pending_host_key_base64: Mapped[str | None] = mapped_column(Text)
    pending_host_key_fingerprint: Mapped[str | None] = mapped_column(String(100))
    remote_path: Mapped[str] = mapped_column(String(512), default=DEFAULT_REMOTE_PATH)
    package_form: Mapped[str] = mapped_column(String(10), default="tree")  # tree | zip | iso
    marker: Mapped[str] = mapped_column(String(64), default="")
    # Upload bandwidth cap of submissions, kB/s (0: none), so a delivery never fills the
    # hospital's uplink.
    rate_limit_kbps: Mapped[int] = mapped_column(Integer, default=0)
    # DICOM
    called_aet: Mapped[str] = mapped_column(String(16), default="")
    calling_aet: Mapped[str] = mapped_column(String(16), default="")
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    # The certificate (or its CA) that the peer's TLS certificate must chain to, PEM; empty:
    # the system's trusted CAs.
    tls_ca_pem: Mapped[str] = mapped_column(Text, default="")
    max_pdu: Mapped[int] = mapped_column(Integer, default=0)
    commitment: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where our AE listens for the commitment report when the peer sends it on a new
    # association (0: on the same association).
    commitment_port: Mapped[int] = mapped_column(Integer, default=0)
    # DICOMweb
    base_url: Mapped[str] = mapped_column(String(1024), default="")
    auth_header_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last "test connection": its outcome only (ok, unpinned, failed) and one line.
    last_test_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_test_outcome: Mapped[str] = mapped_column(String(10), default="")
    last_test_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    trial: Mapped[Trial] = relationship()
