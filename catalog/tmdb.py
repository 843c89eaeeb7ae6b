"""A small client of TMDB's API (https://developer.themoviedb.org): a film's poster and its image.

Only what posters need: the film by TMDB id (GET /movie/{id}), else by IMDb id (GET
/find/{imdb_id}?external_source=imdb_id), then the image from TMDB's image host. The key is
TMDB_API_KEY: a v3 API key (sent as ?api_key=) or a v4 read access token (sent as a Bearer header).

TMDB publishes no fixed quota any more (the 40 requests per 10 seconds limit was lifted in
December 2019) but keeps an upper limit "somewhere in the 50 requests per second range" and asks
clients to respect 429 answers. So requests to the API are paced to TMDB_REQUESTS_PER_SECOND
(default 20, within the limit even with two runs at once), a 429 waits for its Retry-After, and
server errors or timeouts are retried a few times with a growing pause.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

POSTER_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 120  # seconds; a longer Retry-After fails the request instead of stalling a worker


class TMDBError(Exception):
    """TMDB could not give what was asked (the message says why); other films may still work."""


class TMDBAuthError(TMDBError):
    """The key was refused: no request will work, so a run stops."""


@dataclass(frozen=True)
class Poster:
    content: bytes
    content_type: str

    @property
    def extension(self) -> str:
        return POSTER_TYPES[self.content_type]


class _Pace:
    """At most `per_second` starts per second across the threads of this process."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = self.clock()
            if self.next_start > now:
                self.sleep(self.next_start - now)
                now = self.next_start
            self.next_start = now + self.interval

    def hold(self, seconds: float) -> None:
        """Start nothing for `seconds` (after a 429)."""
        with self.lock:
            self.next_start = max(self.next_start, self.clock() + seconds)


class TMDBClient:
    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = "https://api.themoviedb.org/3",
        image_url: str = "https://image.tmdb.org/t/p",
        poster_size: str = "w500",
        requests_per_second: float = 20,
        max_poster_bytes: int = 2_000_000,
        timeout: float = 10,
        sleep=time.sleep,
    ):
        if not api_key:
            raise TMDBAuthError("No TMDB API key: set TMDB_API_KEY (a v3 API key or a v4 read access token).")
        self.api_key, self.api_url, self.image_url = api_key, api_url.rstrip("/"), image_url.rstrip("/")
        self.poster_size, self.max_poster_bytes, self.timeout = poster_size, max_poster_bytes, timeout
        self.sleep = sleep
        self.pace = _Pace(requests_per_second, sleep=sleep)

    @classmethod
    def from_settings(cls) -> "TMDBClient":
        from django.conf import settings

        return cls(
            settings.TMDB_API_KEY,
            api_url=settings.TMDB_API_URL,
            image_url=settings.TMDB_IMAGE_URL,
            poster_size=settings.TMDB_POSTER_SIZE,
            requests_per_second=settings.TMDB_REQUESTS_PER_SECOND,
            max_poster_bytes=settings.TMDB_MAX_POSTER_BYTES,
            timeout=settings.TMDB_TIMEOUT,
        )

    # --- HTTP ------------------------------------------------------------------------------------

    def _request(self, url: str, *, api: bool):
        """An open response for url (the caller reads and closes it); None for a 404."""
        headers = {"Accept": "application/json" if api else "image/*", "User-Agent": "movierec"}
        if api and self.api_key.startswith("eyJ"):  # a v4 read access token (a JWT)
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif api:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"api_key": self.api_key})
        shown = url.split("api_key=")[0].rstrip("?&")  # never put the key in an error message
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if api:
                self.pace.wait()
            try:
                return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout)  # noqa: S310
            except urllib.error.HTTPError as error:
                error.close()
                if error.code == 404:
                    return None
                if error.code == 401:
                    raise TMDBAuthError("TMDB refused the API key (401): check TMDB_API_KEY.") from None
                if error.code == 429:
                    wait = _retry_after(error.headers.get("Retry-After"))
                    if wait > MAX_RETRY_AFTER or attempt == MAX_ATTEMPTS:
                        raise TMDBError(f"TMDB is limiting requests (429, retry after {wait:g} s): {shown}") from None
                    self.pace.hold(wait)
                    continue
                if error.code < 500 or attempt == MAX_ATTEMPTS:
                    raise TMDBError(f"TMDB answered {error.code} for {shown}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                if attempt == MAX_ATTEMPTS:
                    raise TMDBError(f"TMDB did not answer ({getattr(error, 'reason', error)}): {shown}") from None
            self.sleep(2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _json(self, path: str, **params) -> dict | None:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        response = self._request(f"{self.api_url}{path}{query}", api=True)
        if response is None:
            return None
        with response:
            try:
                return json.loads(response.read(1_000_000))
            except ValueError:
                raise TMDBError(f"TMDB sent something that is not JSON for {path}") from None

    # --- What posters need -----------------------------------------------------------------------

    def poster_path(self, *, tmdb_id: int | None = None, imdb_id: str | None = None) -> str | None:
        """TMDB's poster path ("/abc.jpg") of the film, by TMDB id, else by IMDb id; None when TMDB
        knows the film without a poster or does not know it."""
        if tmdb_id:
            found = self._json(f"/movie/{int(tmdb_id)}")
            if found is not None:
                return found.get("poster_path") or None
        if imdb_id:
            found = self._json(f"/find/{urllib.parse.quote(imdb_id)}", external_source="imdb_id")
            for film in (found or {}).get("movie_results") or []:
                if film.get("poster_path"):
                    return film["poster_path"]
        return None

    def poster(self, poster_path: str) -> Poster:
        """The image at poster_path, checked: an image type we store, at most max_poster_bytes,
        and a picture Pillow can read. Raises TMDBError otherwise."""
        if not poster_path.startswith("/") or ".." in poster_path:
            raise TMDBError(f"unexpected poster path {poster_path!r}")
        url = f"{self.image_url}/{self.poster_size}{poster_path}"
        response = self._request(url, api=False)
        if response is None:
            raise TMDBError(f"no image at {url} (404)")
        with response:
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type not in POSTER_TYPES:
                raise TMDBError(f"{url} is {content_type or 'of no stated type'}, not a JPEG, PNG or WebP image")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_poster_bytes:
                raise TMDBError(f"{url} is {int(declared):,} bytes, over the {self.max_poster_bytes:,} allowed")
            content = response.read(self.max_poster_bytes + 1)
        if len(content) > self.max_poster_bytes:
            raise TMDBError(f"{url} is over the {self.max_poster_bytes:,} bytes allowed")
        _check_image(content, content_type, url)
        return Poster(content, content_type)


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date); 1 when absent or unreadable."""
    if not value:
        return 1.0
    if value.strip().isdigit():
        return float(value.strip())
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 1.0


def _check_image(content: bytes, content_type: str, url: str) -> None:
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(content)) as image:
            image.verify()  # structure and checksums
            kind = (image.format or "").lower()
        with Image.open(BytesIO(content)) as image:
            image.load()  # every pixel decodes: a file cut short fails here
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise TMDBError(f"{url} is not a readable image ({error})") from None
    if POSTER_TYPES.get(content_type) != {"jpeg": "jpg"}.get(kind, kind):
        raise TMDBError(f"{url} says {content_type} but holds a {kind or 'different'} image")
