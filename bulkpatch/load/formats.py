"""What a file is, by its content: the files bulkpatch cannot read as a sheet (an encrypted
workbook, an old .xls or an .ods under another name, an Apple Numbers file, a PDF, a folder),
each refused in one line naming the file and what to do instead.

The name's suffix decides how a readable file is read (`reader.EXCEL_SUFFIXES`); this looks at
the first bytes (and a zip's names) so a file that is something else under that name is told
what it is, not given the reader's own complaint.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from bulkpatch.errors import InputError

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Compound File Binary: Excel 97-2003, or encrypted
# An encrypted Office file is a Compound File holding these streams ("[MS-OFFCRYPTO] Office
# Document Cryptography Structure", 2.3.4: the EncryptionInfo and EncryptedPackage streams,
# https://learn.microsoft.com/openspecs/office_file_formats/ms-offcrypto/); the names are UTF-16.
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
ODS_MIME = "application/vnd.oasis.opendocument.spreadsheet"  # an .ods file's `mimetype` entry
_OLE_SCAN = 64 << 20  # bytes searched for the stream name: a workbook's directory is in them
SAVE_UNPROTECTED = (
    "is protected with a password (an encrypted workbook), which bulkpatch cannot open: "
    "open it in Excel, save a copy without the password (File > Info > Protect Workbook > "
    "Encrypt with Password, then clear it) and check that copy"
)


def refuse_unreadable(path: Path, excel: bool) -> None:
    """Raise `InputError` when `path` cannot be a sheet, saying what it is and what to do.

    `excel`: the name says workbook (a real .xls or .ods is read as what it is)."""
    if not path.exists():
        raise InputError(f"{path}: no such file; check its name and folder.")
    if path.is_dir():
        if _numbers(path):
            raise InputError(f"{path}: is an Apple Numbers document, not a sheet; {_NUMBERS}.")
        raise InputError(f"{path}: is a folder, not a sheet; give the path of a CSV or Excel file.")
    with path.open("rb") as handle:
        head = handle.read(8)
    suffix = path.suffix.lower()
    if head.startswith(b"%PDF"):
        raise InputError(
            f"{path}: is a PDF, not a sheet; save the table from where it came as CSV or "
            "Excel (.xlsx) and check that file."
        )
    if head == OLE:
        if _encrypted(path):
            raise InputError(f"{path}: {SAVE_UNPROTECTED}.")
        if suffix != ".xls":
            raise InputError(
                f"{path}: is an Excel 97-2003 workbook (.xls) under another name; open it in "
                "Excel and save it as .xlsx (or rename it to .xls)."
            )
    elif head.startswith(b"PK\x03\x04"):
        _refuse_zip(path, suffix)
    elif excel:
        raise InputError(
            f"{path}: is not an Excel workbook, whatever its name says; if it is text, rename "
            "it to .csv, else save it from its program as .xlsx or CSV."
        )


_NUMBERS = "in Numbers, File > Export To > Excel (or CSV), and check that file"


def _numbers(path: Path) -> bool:
    """An Apple Numbers document: a package folder or a zip, with `Index/Document.iwa`."""
    return path.suffix.lower() == ".numbers" or (path / "Index" / "Document.iwa").exists()


def _encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return ENCRYPTED in handle.read(_OLE_SCAN)


def _refuse_zip(path: Path, suffix: str) -> None:
    """A zip that is not an Excel workbook: an OpenDocument spreadsheet under another name, an
    Apple Numbers file, or another archive."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            mime = z.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
            mime = mime.strip()
    except (zipfile.BadZipFile, OSError):
        return  # the workbook reader says it is damaged
    if mime == ODS_MIME and suffix != ".ods":
        raise InputError(
            f"{path}: is an OpenDocument spreadsheet (.ods, as LibreOffice saves) under another "
            "name; save it as .xlsx, or rename it to .ods."
        )
    if "Index/Document.iwa" in names or any(n.startswith("Index/") for n in names):
        raise InputError(f"{path}: is an Apple Numbers document, not a sheet; {_NUMBERS}.")
    if suffix != ".ods" and "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise InputError(
            f"{path}: is a zip archive, not an Excel workbook; unzip it and check the sheet "
            "inside, or save the sheet as .xlsx or CSV."
        )
