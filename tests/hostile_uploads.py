"""A corpus of hostile history uploads, built in memory (nothing on disk but this code).

Used by tests/test_hostile_uploads.py (each must give a clear form error and write nothing)
and by bench/bench_uploads.py (peak memory of parsing each bomb). Bombs expand to `expanded`
bytes of one repeated line, compressed on the fly so building one never holds it whole.
"""
from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from typing import Callable

RATINGS_HEADER = b"Date,Name,Year,Letterboxd URI,Rating\n"
IMDB_HEADER = b"Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Year\n"
ROW = b"2024-01-02,The Matrix,1999,,4.5\n"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str
    filename: str
    build: Callable[[], bytes]
    message: str  # what the refusal must say


def _expanded_chunks(expanded: int, fill: bytes, chunk: int = MiB):
    """RATINGS_HEADER then copies of `fill`, `expanded` bytes in all, in chunks."""
    line = fill * (chunk // len(fill))
    yield RATINGS_HEADER
    left = expanded - len(RATINGS_HEADER)
    while left > 0:
        piece = line[:left]
        yield piece
        left -= len(piece)


def _one_member_zip(method: int, expanded: int, member: str = "ratings.csv", fill: bytes | None = None) -> bytes:
    # Rows of a real ratings.csv by default, except for bzip2, which takes minutes to compress
    # them (spaces: a second).
    fill = fill or (b" " if method == zipfile.ZIP_BZIP2 else ROW)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        with archive.open(member, "w") as handle:  # streamed: the expansion is never held whole
            for piece in _expanded_chunks(expanded, fill):
                handle.write(piece)
    return buffer.getvalue()


# Offsets of fields in the local file header and in the central directory entry.
_LOCAL = {"flags": (6, "<H"), "method": (8, "<H"), "size": (22, "<L")}
_CENTRAL = {"flags": (8, "<H"), "method": (10, "<H"), "size": (24, "<L")}


def _patched(data: bytes, **fields) -> bytes:
    """A one-member zip with header fields (flags, method, size) rewritten in both headers."""
    data = bytearray(data)
    central = data.rfind(b"PK\x01\x02")
    for name, value in fields.items():
        for start, layout in ((0, _LOCAL), (central, _CENTRAL)):
            offset, fmt = layout[name]
            struct.pack_into(fmt, data, start + offset, value)
    return bytes(data)


def zip_bomb(method: int, expanded: int, *, declared: int | None = None, fill: bytes | None = None) -> bytes:
    """A one-member zip whose ratings.csv expands to `expanded` bytes (of `fill` after the header);
    its headers declare `declared` (default: the truth), which is how a bomb slips past a check
    of the declared size."""
    data = _one_member_zip(method, expanded, fill=fill)
    return _patched(data, size=declared) if declared is not None else data


def corrupt_member(method: int) -> bytes:
    """A small zip whose member's compressed bytes are damaged."""
    data = bytearray(_one_member_zip(method, 256 * 1024))
    end = data.rfind(b"PK\x01\x02")
    for index in range(end // 3, end // 3 + 32):
        data[index] ^= 0x5A
    return bytes(data)


def unknown_method() -> bytes:
    """A member marked with compression method 99 (WinZip AES), which zipfile cannot read."""
    return _patched(_one_member_zip(zipfile.ZIP_STORED, 1024), method=99)


def encrypted() -> bytes:
    return _patched(_one_member_zip(zipfile.ZIP_STORED, 1024), flags=1)


def many_members(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ratings.csv", RATINGS_HEADER + ROW)
        for index in range(count):
            archive.writestr(f"lists/{index}.csv", b"")
    return buffer.getvalue()


def understated_members(count: int) -> bytes:
    """many_members(count) with an end record claiming one member (zipfile lists them all anyway)."""
    data = bytearray(many_members(count))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)
    return bytes(data)


def ratings_csv(*cells: str) -> bytes:
    return RATINGS_HEADER + (",".join(cells) + "\n").encode()


def imdb_csv(const: str = "tt0133093", rating: str = "9", year: str = "1999", rated: str = "2023-05-01") -> bytes:
    return IMDB_HEADER + f"{const},{rating},{rated},The Matrix,The Matrix,,Movie,8.7,{year}\n".encode()


BIG = "9" * 5000
BOMB_BYTES = 16 * MiB  # past the 10 MB cap; bench/bench_uploads.py builds bigger ones  # past Python's 4,300-digit limit on int()

CORPUS = [
    # Zip bombs of every compression method, and damaged or unreadable members.
    Hostile("deflate bomb, honest header", "export.zip", lambda: zip_bomb(zipfile.ZIP_DEFLATED, BOMB_BYTES), "expands to more than 10 MB"),
    Hostile("deflate bomb, header says 1 KB", "export.zip",
            lambda: zip_bomb(zipfile.ZIP_DEFLATED, BOMB_BYTES, declared=1024), "is damaged"),
    Hostile("bzip2 bomb", "export.zip", lambda: zip_bomb(zipfile.ZIP_BZIP2, BOMB_BYTES, declared=1024), "compressed with bzip2"),
    Hostile("LZMA bomb", "export.zip", lambda: zip_bomb(zipfile.ZIP_LZMA, BOMB_BYTES, declared=1024), "compressed with LZMA"),
    Hostile("corrupt deflate member", "export.zip", lambda: corrupt_member(zipfile.ZIP_DEFLATED), "is damaged"),
    Hostile("corrupt bzip2 member", "export.zip", lambda: corrupt_member(zipfile.ZIP_BZIP2), "compressed with bzip2"),
    Hostile("corrupt LZMA member", "export.zip", lambda: corrupt_member(zipfile.ZIP_LZMA), "compressed with LZMA"),
    Hostile("unknown compression method", "export.zip", unknown_method, "compressed with AES"),
    Hostile("password-protected member", "export.zip", encrypted, "password-protected"),
    Hostile("6,000 members", "export.zip", lambda: many_members(6000), "more than 5,000 files"),
    Hostile("6,000 members, end record says 1", "export.zip", lambda: understated_members(6000), "more than 5,000 files"),
    # Text that is not what it claims to be.
    Hostile("UTF-16 text", "ratings.csv", lambda: (RATINGS_HEADER + ROW).decode().encode("utf-16"), "binary file"),
    Hostile("a NUL byte mid-file", "ratings.csv", lambda: RATINGS_HEADER + ROW * 200 + b"2024-01-02,X\x00,1999,,4\n", "a NUL byte on line 202"),
    Hostile("a 200,000-character line", "ratings.csv", lambda: ratings_csv("2024-01-02", "A" * 200_000, "1999", "", "4"), "longer than 65,536 characters"),
    # Numbers that are not numbers, or too big to be one.
    Hostile("superscript year", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "²", "", "4"), "line 2: '²' is not a year"),
    Hostile("5,000-digit year", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", BIG, "", "4"), "line 2: '9999"),
    Hostile("Arabic-Indic year", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "١٩٩٥", "", "4"), "is not a year"),
    Hostile("rating nan", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "1995", "", "nan"), "rating 'nan' is not 0.5–5 stars"),
    Hostile("rating inf", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "1995", "", "inf"), "rating 'inf' is not 0.5–5 stars"),
    Hostile("rating 1e308", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "1995", "", "1e308"), "rating '1e308' is not 0.5–5 stars"),
    Hostile("rating of 5,000 digits", "ratings.csv", lambda: ratings_csv("2024-01-02", "Heat", "1995", "", BIG), "is not 0.5–5 stars"),
    Hostile("IMDb superscript rating", "ratings.csv", lambda: imdb_csv(rating="²"), "rating '²' is not a whole number from 1 to 10"),
    Hostile("IMDb 5,000-digit rating", "ratings.csv", lambda: imdb_csv(rating=BIG), "is not a whole number from 1 to 10"),
    Hostile("IMDb superscript year", "ratings.csv", lambda: imdb_csv(year="¹⁹⁹⁹"), "is not a year"),
    Hostile("IMDb id in Arabic-Indic digits", "ratings.csv", lambda: imdb_csv(const="tt٠١٣٣٠٩٣"), "is not an IMDb id"),
    # Dates a diary cannot hold.
    Hostile("date in year 1", "ratings.csv", lambda: ratings_csv("0001-01-01", "Heat", "1995", "", "4"), "not plausible for a diary"),
    Hostile("date in year 9999", "ratings.csv", lambda: ratings_csv("9999-12-31", "Heat", "1995", "", "4"), "not plausible for a diary"),
    Hostile("date that is not one", "ratings.csv", lambda: ratings_csv("2024-02-30", "Heat", "1995", "", "4"), "is not a date"),
    Hostile("IMDb date in superscript", "ratings.csv", lambda: imdb_csv(rated="²⁰²³-05-01"), "is not a date"),
]

BOMBS = [hostile for hostile in CORPUS if "bomb" in hostile.name or "members" in hostile.name]
