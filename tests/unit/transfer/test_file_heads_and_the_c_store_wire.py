"""The raw head reader agrees with pydicom; C-STORE command sets encode as pynetdicom's do;
the wire sends datasets as stored, in PDUs the peer allows, plain or over TLS."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import socket
import ssl
import struct
import threading
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode

from trialship.dicom_header import NotDicom, Unsupported, dataset_offset, read_raw_header
from trialship.transfer.dimse_wire import Wire, parse_command, store_command
from trialship.transfer.package import _read_header_pydicom, read_header


def _bundled() -> list[Path]:
    folder = Path(str(get_testdata_file("CT_small.dcm"))).parent
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_the_fast_header_reader_agrees_with_pydicom_on_every_bundled_file() -> None:
    files = _bundled()
    fast = 0
    for path in files:
        try:
            read_raw_header(path, (0x00080016, 0x00080018, 0x00120062))
            fast += 1
        except (NotDicom, Unsupported, ValueError):
            pass  # pydicom's: big endian, deflated, odd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's complaints about odd test files
            assert read_header(path) == _read_header_pydicom(path), path.name
    assert fast > len(files) * 3 // 4  # most take the fast path, the rest are pydicom's


def _meta_bytes(ds: Dataset) -> bytes:
    from pydicom.filewriter import write_file_meta_info

    out = DicomBytesIO()
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    return out.getvalue()


def _nested(syntax: str, *, removed: str | None) -> bytes:
    inner = Dataset()
    inner.CodeValue = "X"
    inner.ContentSequence = Sequence([Dataset()])
    inner.ContentSequence[0].CodeMeaning = "deep"
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = Sequence([inner, Dataset()])
    ds.ProcedureCodeSequence = Sequence([])
    ds.PatientName = "SUBJ"
    if removed is not None:
        ds.PatientIdentityRemoved = removed
    for keyword in ("ReferencedImageSequence", "ProcedureCodeSequence"):
        ds[keyword].is_undefined_length = True
    ds.ContentSequence = Sequence([Dataset()])  # (0040,A730): after the flag
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("removed", ["YES", "NO ", None])
def test_undefined_length_sequences_before_the_flag_are_skipped(
    syntax: str, removed: str | None, tmp_path: Path
) -> None:
    data = _nested(syntax, removed=removed)
    path = tmp_path / "nested.dcm"
    path.write_bytes(data)
    header = read_header(path)
    assert header is not None
    ds = dcmread(io.BytesIO(data))
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.identity_removed == (None if removed is None else removed.strip())
    raw = read_raw_header(path, (0x00120062,))
    assert raw.dataset_offset == dataset_offset(data) == 132 + len(_meta_bytes(ds))
    # bytes that end inside the file meta do not say where the dataset starts
    assert dataset_offset(data[:140]) is None


def test_the_c_store_command_set_is_encoded_as_pynetdicom_encodes_it() -> None:
    primitive = C_STORE()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = "1.2.3.45"
    primitive.Priority = 0
    primitive.DataSet = io.BytesIO(b"\0\0")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    theirs = encode(message.command_set, True, True)
    assert store_command("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", 7) == theirs
    values = parse_command(theirs)
    assert values[0x0110] == b"\x07\x00" and values[0x1000] == b"1.2.3.45"


def _store_rsp(message_id: int, status: int, comment: bytes) -> bytes:
    """A C-STORE-RSP P-DATA-TF PDU, written out by hand (implicit VR little endian)."""

    def element(elem: int, value: bytes) -> bytes:
        return struct.pack("<HHI", 0, elem, len(value)) + value

    body = (
        element(0x0100, struct.pack("<H", 0x8001))
        + element(0x0120, struct.pack("<H", message_id))
        + element(0x0800, struct.pack("<H", 0x0101))
        + element(0x0900, struct.pack("<H", status))
        + element(0x0902, comment)
    )
    command = element(0x0000, struct.pack("<I", len(body))) + body
    # split over two PDVs, as a peer may
    pdvs = b"".join(
        struct.pack(">IBB", len(part) + 2, 1, 0x01 | (0x02 if last else 0)) + part
        for part, last in ((command[:10], False), (command[10:], True))
    )
    return struct.pack(">BBI", 0x04, 0, len(pdvs)) + pdvs


def _fake_scp(sock: socket.socket, answers: int, got: list[tuple[bytes, bytes]]) -> None:
    """Reads C-STORE-RQs (command, dataset) and answers each with status 0xB000."""
    reader = sock.makefile("rb")
    for message_id in range(1, answers + 1):
        command, dataset, done = b"", b"", False
        while not done:
            kind, _, length = struct.unpack(">BBI", reader.read(6))
            body = reader.read(length)
            assert kind == 0x04 and length <= 4096  # the peer's maximum PDU is respected
            pos = 0
            while pos < length:
                item, _, control = struct.unpack_from(">IBB", body, pos)
                fragment = body[pos + 6 : pos + 4 + item]
                pos += 4 + item
                if control & 1:
                    command += fragment
                else:
                    dataset += fragment
                    done = bool(control & 2)
        got.append((command, dataset))
        sock.sendall(_store_rsp(message_id, 0xB000, b"Coerced "))


def _tls_pair(tmp_path: Path) -> tuple[socket.socket, socket.socket]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cadata=pem.decode())
    ours, theirs = socket.socketpair()
    handshake: list[ssl.SSLSocket] = []
    thread = threading.Thread(
        target=lambda: handshake.append(server_context.wrap_socket(theirs, server_side=True))
    )
    thread.start()
    client = client_context.wrap_socket(ours, server_hostname="localhost")
    thread.join()
    return client, handshake[0]


@pytest.mark.parametrize("tls", [False, True])
def test_the_wire_sends_each_dataset_as_stored_and_reads_the_status(
    tmp_path: Path, tls: bool
) -> None:
    paths = []
    for n, size in enumerate((30_000, 0, 9_000_000)):  # the last in three 4 MiB blocks
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
        ds.PatientIdentityRemoved = "YES"
        if size:
            ds.BitsAllocated = 8
            ds.PixelData = bytes(range(256)) * (size // 256)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        paths.append(tmp_path / f"{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    ours, theirs = _tls_pair(tmp_path) if tls else socket.socketpair()
    got: list[tuple[bytes, bytes]] = []
    scp = threading.Thread(target=_fake_scp, args=(theirs, len(paths), got))
    scp.start()
    wire = Wire(ours, 4096)
    answers = []
    for n, path in enumerate(paths, start=1):
        opened = wire.open(path, hash_file=True)
        answers.append(wire.store(opened, 1, "1.2.840.10008.5.1.4.1.1.7", f"1.2.{n}", n))
    scp.join()
    ours.close()
    theirs.close()
    assert [(a.status, a.error_comment) for a in answers] == [(0xB000, "Coerced")] * 3
    for path, answer, (command, dataset) in zip(paths, answers, got, strict=True):
        data = path.read_bytes()
        assert dataset == data[dataset_offset(data) :]
        assert answer.sha256 == hashlib.sha256(data).hexdigest()
        assert parse_command(command)[0x0100] == b"\x01\x00"
