"""Where an export's files live: a folder or a .zip, the files at the top or in one sub-folder."""

from __future__ import annotations

import mmap
import os
import zipfile
from collections.abc import Iterator
from types import TracebackType

from polis_like.errors import InputError, TooLarge
from polis_like.io.polis_csv import PARTICIPANTS_VOTES, VOTES

_IGNORED = ("__MACOSX", ".")

#: The most an archive's files may inflate to, all together: far more than the largest
#: conversation's CSV files, far less than a zip bomb's.
MAX_INFLATED_BYTES = 4 * 1024**3
#: How many times its compressed size a file over ``RATIO_FROM_BYTES`` may inflate to. Pol.is
#: CSV files compress 4 to 20 times; deflate can reach about 1,000 times (a zip bomb).
MAX_RATIO = 200
RATIO_FROM_BYTES = 1024**2
_CHUNK = 1024**2


class ExportSource:
    """The files of one export, read as bytes by base name (``votes.csv``, ...)."""

    def __init__(self, location: str, files: dict[str, str], archive: zipfile.ZipFile | None):
        self.location = location
        self._files = files  # base name -> path in the folder or member name in the archive
        self._archive = archive
        self._inflated: dict[str, int] = {}  # bytes inflated from the archive, by file

    @property
    def in_archive(self) -> bool:
        """Whether the files are inflated from a .zip (else read from a folder)."""
        return self._archive is not None

    def has(self, name: str) -> bool:
        """Whether the export holds the file ``name``."""
        return name in self._files

    def where(self, name: str) -> str:
        """The path to report for ``name`` (inside the archive for a zip)."""
        if name in self._files:
            return os.path.join(self.location, self._files[name])
        root = os.path.dirname(next(iter(self._files.values()), ""))
        return os.path.join(self.location, root, name)

    def read(self, name: str) -> bytes:
        """The bytes of the file ``name``."""
        return b"".join(self.chunks(name, None))

    def chunks(self, name: str, size: int | None) -> Iterator[bytes]:
        """The bytes of the file ``name`` in pieces of about ``size`` bytes (None: whole)."""
        try:
            if self._archive is not None:
                yield from self._inflate(self._archive, self._files[name], name, size)
            else:
                with open(os.path.join(self.location, self._files[name]), "rb") as file:
                    while part := file.read(-1 if size is None else size):
                        yield part
        except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as error:
            raise InputError(f"cannot read: {error}", path=self.where(name)) from None

    def mapped(self, name: str) -> mmap.mmap | None:
        """The file ``name`` mapped read-only into memory, or None (inside a .zip, empty, or a
        file that cannot be mapped: ``chunks`` then reads it, or says why it cannot)."""
        if self._archive is not None:
            return None
        try:
            with open(os.path.join(self.location, self._files[name]), "rb") as file:
                if os.fstat(file.fileno()).st_size == 0:
                    return None
                return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None

    def _inflate(
        self, archive: zipfile.ZipFile, member: str, name: str, size: int | None
    ) -> Iterator[bytes]:
        """The member's bytes, refused with 413 before inflating when its declared size or
        ratio is a zip bomb's, and while inflating should it grow past what it declared.
        A member read again (the row reader after the fast one) counts once."""
        info = archive.getinfo(member)
        budget = MAX_INFLATED_BYTES - sum(
            inflated for other, inflated in self._inflated.items() if other != name
        )
        if info.file_size > budget:
            raise TooLarge(
                f"inflates to {info.file_size} bytes; the limit is "
                f"{MAX_INFLATED_BYTES} for the whole archive",
                path=self.where(name),
            )
        if info.file_size > RATIO_FROM_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise TooLarge(
                f"inflates {info.file_size // max(info.compress_size, 1)} times its "
                f"compressed size; the limit is {MAX_RATIO} (a zip bomb?)",
                path=self.where(name),
            )
        inflated, parts, held = 0, [], 0
        with archive.open(info) as file:
            # inflated 1 MB at a time, so that a lie about the size is caught within 1 MB
            while part := file.read(_CHUNK):
                inflated += len(part)
                if inflated > info.file_size:
                    raise TooLarge("inflates past its declared size", path=self.where(name))
                parts.append(part)
                held += len(part)
                if size is not None and held >= size:
                    yield b"".join(parts) if len(parts) > 1 else parts[0]
                    parts, held = [], 0
        if parts:
            yield b"".join(parts)
        self._inflated[name] = max(self._inflated.get(name, 0), inflated)

    def close(self) -> None:
        """Close the archive, if any."""
        if self._archive is not None:
            self._archive.close()

    def __enter__(self) -> ExportSource:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_export(path: str | os.PathLike[str]) -> ExportSource:
    """The export at ``path``: a folder or a .zip of one."""
    location = os.fspath(path)
    if os.path.isdir(location):
        listing = _folder_listing(location)
        return ExportSource(location, _choose_root(location, listing), None)
    if not os.path.exists(location):
        raise InputError("no such folder or .zip file", path=location)
    if not os.path.isfile(location) or not zipfile.is_zipfile(location):
        raise InputError("not a folder or a .zip file", path=location)
    try:
        archive = zipfile.ZipFile(location)
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"unreadable .zip file: {error}", path=location) from None
    try:
        files = _choose_root(location, _zip_listing(archive))
    except InputError:
        archive.close()
        raise
    return ExportSource(location, files, archive)


def _folder_listing(location: str) -> dict[str, dict[str, str]]:
    """Files at the top of the folder ("") and in each sub-folder: base name -> relative path."""
    listing: dict[str, dict[str, str]] = {"": {}}
    try:
        with os.scandir(location) as entries:
            for entry in entries:
                if entry.name.startswith(_IGNORED):
                    continue
                if entry.is_file():
                    listing[""][entry.name] = entry.name
                elif entry.is_dir():
                    with os.scandir(entry.path) as inner:
                        listing[entry.name] = {
                            e.name: os.path.join(entry.name, e.name) for e in inner if e.is_file()
                        }
    except OSError as error:
        raise InputError(f"cannot list the folder: {error}", path=location) from None
    return listing


def _zip_listing(archive: zipfile.ZipFile) -> dict[str, dict[str, str]]:
    """Members at the top of the archive ("") and in each top-level folder: base name -> member."""
    listing: dict[str, dict[str, str]] = {"": {}}
    for member in archive.namelist():
        parts = member.split("/")
        if member.endswith("/") or parts[0].startswith(_IGNORED) or len(parts) > 2:
            continue
        folder = parts[0] if len(parts) == 2 else ""
        listing.setdefault(folder, {})[parts[-1]] = member
    return listing


def _choose_root(location: str, listing: dict[str, dict[str, str]]) -> dict[str, str]:
    """The files of the one folder that holds an export (the top level first)."""

    def is_export(files: dict[str, str]) -> bool:
        return VOTES in files or PARTICIPANTS_VOTES in files

    if is_export(listing[""]):
        return listing[""]
    roots = sorted(folder for folder, files in listing.items() if folder and is_export(files))
    if not roots:
        raise InputError(f"neither {VOTES} nor {PARTICIPANTS_VOTES} found", path=location)
    if len(roots) > 1:
        raise InputError(f"more than one export inside: {', '.join(roots)}", path=location)
    return listing[roots[0]]
