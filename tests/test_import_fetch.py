"""fetch_movielens against a local HTTP server serving a release zip built by the test (no network)."""
import functools
import hashlib
import http.server
import io
import threading
import zipfile

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Movie, Rating

pytestmark = pytest.mark.django_db

MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,\"Matrix, The (1999)\",Action\n"
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.5,964981247\n2,2,5.0,964981248\n"


@pytest.fixture
def publisher(tmp_path):
    """A folder served over HTTP on 127.0.0.1, like files.grouplens.org/datasets/movielens."""
    root = tmp_path / "site"
    root.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-latest-small/movies.csv", MOVIES)
        archive.writestr("ml-latest-small/ratings.csv", RATINGS)
        archive.writestr("ml-latest-small/links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n2,0133093,603\n")
        archive.writestr("ml-latest-small/tags.csv", "userId,movieId,tag,timestamp\n")
    (root / "ml-latest-small.zip").write_bytes(buffer.getvalue())
    (root / "ml-latest-small.zip.md5").write_text(f"{hashlib.md5(buffer.getvalue()).hexdigest()}  ml-latest-small.zip\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(base_url, cache_dir):
    out = io.StringIO()
    call_command("fetch_movielens", "--release", "small", "--base-url", base_url, "--cache-dir", str(cache_dir),
                 "--no-progress", stdout=out)
    return out.getvalue()


def test_fetch_downloads_verifies_caches_and_imports_the_release(publisher, tmp_path):
    root, url = publisher
    cache = tmp_path / "cache"
    fetch(url, cache)
    assert (cache / "ml-latest-small.zip").read_bytes() == (root / "ml-latest-small.zip").read_bytes()
    assert Movie.objects.get(movielens_id=2).title == "The Matrix"
    assert Rating.objects.count() == 3
    fetch(url, cache)  # cached copy reused, import idempotent
    assert Rating.objects.count() == 3


def test_checksum_mismatch_is_a_clear_error_and_imports_nothing(publisher, tmp_path):
    root, url = publisher
    (root / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    with pytest.raises(CommandError, match="checksum mismatch.*expected MD5 0{32}"):
        fetch(url, tmp_path / "cache")
    assert not Movie.objects.exists()
    assert not list((tmp_path / "cache").iterdir())


def test_unreachable_publisher_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="could not download"):
        fetch("http://127.0.0.1:9", tmp_path / "cache")
