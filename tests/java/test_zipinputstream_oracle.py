"""What java.util.zip.ZipInputStream (the reader TorchServe uses for ``.mar``) accepts here.

Each archive is built byte by byte (struct + zlib) so the test pins exactly which local-header
and data-descriptor layouts the machine's Java accepts, independent of any zip writer:

| case | layout                                                        | Java 17 |
| ---- | ------------------------------------------------------------- | ------- |
| a    | DEFLATED, sizes in the local header (what zipfile writes)     | reads   |
| b    | STORED + data descriptor (flag bit 3)                         | refused |
| c    | DEFLATED + 16-byte data descriptor, no zip64                  | reads   |
| d    | DEFLATED, LOC zip64 extra + 24-byte zip64 descriptor, small   | refused |
| e    | DEFLATED, no LOC zip64 extra + 16-byte descriptor             | reads   |
"""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.java import JavaZipError, ZipEntryInfo, read_with_zipinputstream

STORED, DEFLATED = 0, 8
FLAG_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
MAGIC32 = 0xFFFFFFFF

FILES = {
    "MAR-INF/MANIFEST.json": b'{"model": {"modelName": "m", "handler": "handler.py"}}',
    "handler.py": b"def handle(data, context):\n    return data\n" * 20,
    "config/labels_extra.txt": b"squeezenet-like v1\n",
}


@dataclass(frozen=True)
class Layout:
    """How each entry is written: method, data descriptor and zip64 choices."""

    method: int = DEFLATED
    descriptor: int = 0  # 0: none; 12/16: 32-bit sizes without/with signature; 24: zip64 sizes
    loc_zip64: bool = False  # a zip64 extra field in the local header


def build_zip(files: dict[str, bytes], layout: Layout) -> bytes:
    """A zip of *files* whose local headers follow *layout*, with a matching central directory."""
    out = io.BytesIO()
    central = []
    for name, data in files.items():
        raw_name = name.encode("utf-8")
        crc = zlib.crc32(data)
        if layout.method == DEFLATED:
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = comp.compress(data) + comp.flush()
        else:
            payload = data
        flags = FLAG_UTF8 | (FLAG_DESCRIPTOR if layout.descriptor else 0)
        version = 45 if layout.loc_zip64 or layout.descriptor == 24 else 20
        offset = out.tell()

        if layout.descriptor:
            loc_crc, loc_csize, loc_size = 0, 0, 0
        else:
            loc_crc, loc_csize, loc_size = crc, len(payload), len(data)
        extra = b""
        if layout.loc_zip64:
            extra = struct.pack("<HHQQ", 0x0001, 16, loc_size, loc_csize)
            loc_csize = loc_size = MAGIC32
        out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50, version, flags, layout.method, 0, 0x21,
                loc_crc, loc_csize, loc_size, len(raw_name), len(extra),
            )
        )  # fmt: skip
        out.write(raw_name + extra + payload)
        if layout.descriptor == 12:
            out.write(struct.pack("<III", crc, len(payload), len(data)))
        elif layout.descriptor == 16:
            out.write(struct.pack("<IIII", 0x08074B50, crc, len(payload), len(data)))
        elif layout.descriptor == 24:
            out.write(struct.pack("<IIQQ", 0x08074B50, crc, len(payload), len(data)))

        cd_extra, cd_csize, cd_size = b"", len(payload), len(data)
        if layout.loc_zip64 or layout.descriptor == 24:
            cd_extra = struct.pack("<HHQQ", 0x0001, 16, len(data), len(payload))
            cd_csize = cd_size = MAGIC32
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50, (3 << 8) | version, version, flags, layout.method, 0, 0x21,
                crc, cd_csize, cd_size, len(raw_name), len(cd_extra), 0, 0, 0, 0o100644 << 16, offset,
            )
            + raw_name
            + cd_extra
        )  # fmt: skip
    cd_offset = out.tell()
    cd = b"".join(central)
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(files), len(files), len(cd), cd_offset, 0))
    return out.getvalue()


def expected(files: dict[str, bytes]) -> list[ZipEntryInfo]:
    return [
        ZipEntryInfo(name, len(data), f"{zlib.crc32(data):08x}", hashlib.sha256(data).hexdigest())
        for name, data in files.items()
    ]


def write(tmp_path: Path, data: bytes, name: str = "case.mar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_python_reads(data: bytes) -> None:
    """The hand-built bytes are a well-formed zip by the central directory (Python's view)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert {n: zf.read(n) for n in zf.namelist()} == FILES


def test_a_python_zipfile_deflated_reads(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in FILES.items():
            zf.writestr(name, data)
    assert read_with_zipinputstream(write(tmp_path, buf.getvalue())) == expected(FILES)


def test_a_handbuilt_sizes_in_local_headers_read(tmp_path: Path) -> None:
    for method in (STORED, DEFLATED):
        data = build_zip(FILES, Layout(method=method))
        assert_python_reads(data)
        assert read_with_zipinputstream(write(tmp_path, data)) == expected(FILES)


def test_b_stored_with_data_descriptor_refused(tmp_path: Path) -> None:
    data = build_zip(FILES, Layout(method=STORED, descriptor=16))
    assert_python_reads(data)
    with pytest.raises(JavaZipError) as err:
        read_with_zipinputstream(write(tmp_path, data))
    assert err.value.java_class == "java.util.zip.ZipException"
    assert err.value.java_message == "only DEFLATED entries can have EXT descriptor"


def test_b_zipstream_ng_stored_refused(tmp_path: Path) -> None:
    zipstream = pytest.importorskip("zipstream")
    zs = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED)
    for name, data in FILES.items():
        zs.add(data, name)
    with pytest.raises(JavaZipError, match="only DEFLATED entries can have EXT descriptor"):
        read_with_zipinputstream(write(tmp_path, b"".join(zs)))


@pytest.mark.parametrize("descriptor", [16, 12], ids=["with-signature", "no-signature"])
def test_c_deflated_with_data_descriptor_reads(tmp_path: Path, descriptor: int) -> None:
    data = build_zip(FILES, Layout(method=DEFLATED, descriptor=descriptor))
    assert_python_reads(data)
    assert read_with_zipinputstream(write(tmp_path, data)) == expected(FILES)


def test_c_zipstream_ng_deflated_sized_reads(tmp_path: Path) -> None:
    zipstream = pytest.importorskip("zipstream")
    zs = zipstream.ZipStream(compress_type=zipstream.ZIP_DEFLATED)
    for name, data in FILES.items():
        zs.add(data, name)
    assert read_with_zipinputstream(write(tmp_path, b"".join(zs))) == expected(FILES)


@pytest.mark.parametrize("loc_zip64", [True, False], ids=["loc-zip64-extra", "no-loc-zip64-extra"])
def test_d_zip64_descriptor_small_entry_refused(tmp_path: Path, loc_zip64: bool) -> None:
    # Java 17 reads an 8-byte-size descriptor only when the inflater saw more than 4 GiB;
    # for a small entry it reads 32-bit sizes, takes the high half of csize as size and fails.
    data = build_zip(FILES, Layout(method=DEFLATED, descriptor=24, loc_zip64=loc_zip64))
    assert_python_reads(data)
    with pytest.raises(JavaZipError) as err:
        read_with_zipinputstream(write(tmp_path, data))
    assert err.value.java_class == "java.util.zip.ZipException"
    assert err.value.java_message.startswith("invalid entry size")


def test_d_zipstream_ng_iterator_fed_refused(tmp_path: Path) -> None:
    zipstream = pytest.importorskip("zipstream")
    zs = zipstream.ZipStream(compress_type=zipstream.ZIP_DEFLATED)
    for name, data in FILES.items():
        zs.add(iter([data]), name)  # no size known up front: zip64 descriptors
    with pytest.raises(JavaZipError, match="invalid entry size"):
        read_with_zipinputstream(write(tmp_path, b"".join(zs)))


def test_e_no_loc_zip64_extra_16_byte_descriptor_reads(tmp_path: Path) -> None:
    data = build_zip(FILES, Layout(method=DEFLATED, descriptor=16, loc_zip64=False))
    assert_python_reads(data)
    assert read_with_zipinputstream(write(tmp_path, data)) == expected(FILES)


def test_loc_zip64_extra_with_sizes_in_local_header_reads(tmp_path: Path) -> None:
    for method in (STORED, DEFLATED):
        data = build_zip(FILES, Layout(method=method, loc_zip64=True))
        assert_python_reads(data)
        assert read_with_zipinputstream(write(tmp_path, data)) == expected(FILES)


def test_loc_zip64_extra_with_16_byte_descriptor_reads(tmp_path: Path) -> None:
    data = build_zip(FILES, Layout(method=DEFLATED, descriptor=16, loc_zip64=True))
    assert_python_reads(data)
    assert read_with_zipinputstream(write(tmp_path, data)) == expected(FILES)


def test_not_a_zip_reads_as_empty(tmp_path: Path) -> None:
    # ZipInputStream stops at the first bytes that are not a local header: no error, no entries.
    assert read_with_zipinputstream(write(tmp_path, b"not a zip at all\n" * 4)) == []


def test_name_outside_the_folder_refused(tmp_path: Path) -> None:
    # ZipUtils.unzip's own check on top of ZipInputStream.
    data = build_zip({"../evil.txt": b"x", **FILES}, Layout())
    with pytest.raises(JavaZipError) as err:
        read_with_zipinputstream(write(tmp_path, data))
    assert (err.value.java_class, err.value.java_message) == (
        "java.io.IOException",
        "Detected Zip Slip vulnerability: ../evil.txt",
    )


def test_truncated_zip_refused(tmp_path: Path) -> None:
    data = build_zip(FILES, Layout(method=DEFLATED))
    with pytest.raises(JavaZipError) as err:
        read_with_zipinputstream(write(tmp_path, data[:60]))
    assert err.value.java_class in {"java.util.zip.ZipException", "java.io.EOFException"}
