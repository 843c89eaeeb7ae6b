"""Download a MovieLens release from its publisher into a cache folder and verify its checksum."""
from __future__ import annotations

import hashlib
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

# --release value -> the publisher's archive name (files.grouplens.org/datasets/movielens/<name>.zip).
RELEASES = {
    "small": "ml-latest-small",
    "latest": "ml-latest",
    "100k": "ml-100k",
    "1m": "ml-1m",
    "10m": "ml-10m",
    "20m": "ml-20m",
    "25m": "ml-25m",
    "32m": "ml-32m",
}
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")


class DownloadError(Exception):
    """The release could not be fetched or failed its checksum."""


def _get(url: str, timeout: float = 60):
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https/http URLs from settings or the user)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 (the publisher's checksum is MD5)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_release(release: str, *, base_url: str, cache_dir, progress: bool = True) -> Path:
    """Return the path of the verified <name>.zip in cache_dir, downloading it when needed.

    The expected MD5 comes from the publisher's <name>.zip.md5 next to the archive. A cached
    archive that still matches is reused; a mismatch raises DownloadError and keeps nothing.
    """
    if release not in RELEASES:
        raise DownloadError(f"unknown release {release!r}: choose from {', '.join(RELEASES)}")
    name = RELEASES[release]
    url = f"{base_url.rstrip('/')}/{name}.zip"
    with _get(f"{url}.md5") as response:
        match = _MD5.search(response.read().decode("ascii", "replace"))
    if not match:
        raise DownloadError(f"{url}.md5 holds no MD5 checksum")
    expected = match[1].lower()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{name}.zip"
    if target.exists() and _md5_of(target) == expected:
        return target
    partial = cache_dir / f"{name}.zip.part"
    with _get(url) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {name}.zip", disable=not progress) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    actual = _md5_of(partial)
    if actual != expected:
        partial.unlink()
        raise DownloadError(f"checksum mismatch for {url}: expected MD5 {expected}, got {actual}; nothing was imported")
    shutil.move(partial, target)
    return target
