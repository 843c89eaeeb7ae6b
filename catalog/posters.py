"""Posters: fetched from TMDB and stored through Django's default storage, or generated.

fetch_posters asks TMDB (catalog.tmdb) for each film's poster, by its TMDB id, else its IMDb id,
and stores the image under posters/ in the default storage (MEDIA_ROOT in development). Each film
is saved on its own, so a run that stops keeps what it stored; the next run skips films that
have a poster and films TMDB had none for (poster_checked_at), unless asked to retry them. Films
TMDB could not answer for are tried again next time.

Films without a poster get a generated SVG (placeholder_svg): title and year on a colour and a
pattern derived from the film itself, so a row of them tells films apart.
"""
import hashlib
import math
import textwrap
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from django.core.files.base import ContentFile
from django.utils import timezone
from tqdm import tqdm

from catalog.models import Movie, id_url
from catalog.tmdb import TMDBAuthError, TMDBClient, TMDBError


@dataclass
class PosterRun:
    """What a fetch_posters run did."""

    stored: int = 0
    had_one: int = 0
    not_on_tmdb: int = 0  # TMDB does not know the film, or has no poster for it
    without_ids: int = 0
    failed: list = field(default_factory=list)  # (film, reason)

    def summary(self) -> str:
        lines = [
            f"Posters stored: {self.stored:,}; already had one: {self.had_one:,}; "
            f"none on TMDB: {self.not_on_tmdb:,}; no TMDB or IMDb id: {self.without_ids:,}; failed: {len(self.failed):,}."
        ]
        lines += [f"  {film}: {reason}" for film, reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  … and {len(self.failed) - 20:,} more")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "stored": self.stored, "had_one": self.had_one, "not_on_tmdb": self.not_on_tmdb,
            "without_ids": self.without_ids, "failed": [[film, reason] for film, reason in self.failed],
        }


def films_to_fetch(movie_ids=None, *, force: bool = False, retry_missing: bool = False):
    """The films a run works on, most rated first (the posters people see first come first).

    Without force, films that have a stored poster are left out; without retry_missing, so are
    films TMDB had no poster for on an earlier run.
    """
    films = Movie.objects.all() if movie_ids is None else Movie.objects.filter(pk__in=list(movie_ids))
    if not force:
        films = films.filter(poster="")
        if not retry_missing:
            films = films.filter(poster_checked_at__isnull=True)
    return films.order_by("-rating_count", "pk")


def store_poster(movie: Movie, content: bytes, extension: str) -> None:
    """Save the image as the movie's poster (replacing the file of an earlier one)."""
    old = movie.poster.name if movie.poster else ""
    movie.poster.save(f"{movie.pk}.{extension}", ContentFile(content), save=False)
    movie.poster_checked_at = timezone.now()
    movie.save(update_fields=["poster", "poster_checked_at"])
    if old and old != movie.poster.name:
        movie.poster.storage.delete(old)


def _mark_checked(movie: Movie) -> None:
    movie.poster_checked_at = timezone.now()
    movie.save(update_fields=["poster_checked_at"])


def _in_order(ids: list[int], chunk: int = 500):
    for start in range(0, len(ids), chunk):
        movies = Movie.objects.in_bulk(ids[start:start + chunk])
        yield from (movies[pk] for pk in ids[start:start + chunk] if pk in movies)


def fetch_posters(
    movie_ids=None, *, client: TMDBClient | None = None, force: bool = False, retry_missing: bool = False,
    progress: bool = True,
) -> PosterRun:
    """Fetch and store TMDB posters (see the module docstring). Raises TMDBAuthError when there is
    no key or TMDB refuses it; other errors are counted per film and the run goes on."""
    client = client or TMDBClient.from_settings()
    run = PosterRun()
    films = films_to_fetch(movie_ids, force=force, retry_missing=retry_missing)
    if not force:
        scope = Movie.objects.all() if movie_ids is None else Movie.objects.filter(pk__in=list(movie_ids))
        run.had_one = scope.exclude(poster="").count()
    # The ids first: rows are written while the run goes through them (SQLite gives a reading cursor
    # no isolation from the same connection's writes).
    ids = list(films.values_list("pk", flat=True))
    for movie in tqdm(_in_order(ids), total=len(ids), desc="posters", unit="film", disable=not progress, mininterval=2):
        if not movie.tmdb_id and not movie.imdb_id:
            run.without_ids += 1
            _mark_checked(movie)
            continue
        try:
            path = client.poster_path(tmdb_id=movie.tmdb_id, imdb_id=movie.imdb_id)
            if path is None:
                run.not_on_tmdb += 1
                _mark_checked(movie)
                continue
            poster = client.poster(path)
        except TMDBAuthError:
            raise
        except TMDBError as error:
            run.failed.append((str(movie), str(error)))
            continue
        store_poster(movie, poster.content, poster.extension)
        run.stored += 1
    return run


# --- Generated placeholders ------------------------------------------------------------------

WIDTH, HEIGHT = 300, 450
TITLE_SIZES = (58, 50, 44, 38, 33, 28, 24)  # the largest that fits is used
MAX_LINES = 5
TEXT_WIDTH = 264
CHARACTER_WIDTH = 0.6
PATTERNS = ("stripes", "dots", "rings", "chevrons", "bubbles", "grid", "rays", "waves")


class _Dice:
    """Numbers drawn from a film's own hash: the same film always gets the same poster."""

    def __init__(self, text: str):
        self.digest = hashlib.sha256(text.encode()).digest()
        self.position = 0

    def __call__(self, low: int, high: int) -> int:
        value = self.digest[self.position % len(self.digest)]
        self.position += 1
        return low + value * (high - low + 1) // 256


def _title_lines(title: str) -> tuple[list[str], int]:
    """The title wrapped at the largest size where every word fits on a line and at most
    MAX_LINES lines are needed (a bold serif letter is taken as 0.6 em wide)."""
    longest_word = max((len(word) for word in title.split()), default=1)
    for size in TITLE_SIZES:
        per_line = int(TEXT_WIDTH / (size * CHARACTER_WIDTH))
        if longest_word > per_line:
            continue
        lines = textwrap.wrap(title, width=per_line, break_long_words=False) or ["Untitled"]
        if len(lines) <= MAX_LINES:
            return lines, size
    size = TITLE_SIZES[-1]
    lines = textwrap.wrap(title, width=int(TEXT_WIDTH / (size * CHARACTER_WIDTH))) or ["Untitled"]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: max(1, len(lines[-1]) - 1)].rstrip() + "…"
    return lines, size


def _pattern(kind: str, dice: _Dice, ink: str) -> str:
    """SVG for one pattern in a translucent light ink, its sizes and angles drawn from the dice."""
    if kind == "stripes":
        width, angle = dice(10, 28), dice(0, 11) * 15
        return (f'<pattern id="p" width="{width * 2}" height="{width * 2}" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate({angle})"><rect width="{width}" height="{width * 2}" fill="{ink}"/></pattern>'
                f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#p)"/>')
    if kind == "dots":
        step, radius = dice(18, 34), dice(3, 8)
        return (f'<pattern id="p" width="{step}" height="{step}" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate({dice(0, 45)})"><circle cx="{step / 2}" cy="{step / 2}" r="{radius}" fill="{ink}"/>'
                f'</pattern><rect width="{WIDTH}" height="{HEIGHT}" fill="url(#p)"/>')
    if kind == "rings":
        cx, cy, gap = dice(0, WIDTH), dice(0, HEIGHT), dice(14, 30)
        return "".join(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{ink}" stroke-width="{gap / 3:.1f}"/>'
                       for r in range(gap, 560, gap))
    if kind == "chevrons":
        width, height = dice(30, 60), dice(14, 30)
        return (f'<pattern id="p" width="{width}" height="{height * 2}" patternUnits="userSpaceOnUse">'
                f'<path d="M0 {height} L{width / 2} 0 L{width} {height}" fill="none" stroke="{ink}" stroke-width="{dice(4, 9)}"/>'
                f'</pattern><rect width="{WIDTH}" height="{HEIGHT}" fill="url(#p)"/>')
    if kind == "bubbles":
        return "".join(f'<circle cx="{dice(-40, WIDTH + 40)}" cy="{dice(-40, HEIGHT + 40)}" r="{dice(30, 120)}" fill="{ink}"/>'
                       for _ in range(dice(5, 9)))
    if kind == "grid":
        step = dice(22, 44)
        return (f'<pattern id="p" width="{step}" height="{step}" patternUnits="userSpaceOnUse" patternTransform="rotate({dice(0, 3) * 15})">'
                f'<path d="M{step} 0 L0 0 0 {step}" fill="none" stroke="{ink}" stroke-width="{dice(2, 6)}"/></pattern>'
                f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#p)"/>')
    if kind == "rays":
        cx, cy, count = dice(0, 1) * WIDTH, dice(0, 1) * HEIGHT, dice(9, 16)
        rays = []
        for i in range(count):
            a, b = (i * 2) * math.pi / (count * 2), (i * 2 + 1) * math.pi / (count * 2)
            rays.append(f"M{cx} {cy} L{cx + 900 * math.cos(a * 4):.0f} {cy + 900 * math.sin(a * 4):.0f} "
                        f"L{cx + 900 * math.cos(b * 4):.0f} {cy + 900 * math.sin(b * 4):.0f}Z")
        return f'<path d="{" ".join(rays)}" fill="{ink}"/>'
    amplitude, length, gap = dice(6, 18), dice(50, 110), dice(18, 34)
    waves = "".join(
        f'<path d="M-20 {y} q{length / 4} {-amplitude} {length / 2} 0 t{length / 2} 0 t{length / 2} 0 t{length / 2} 0 '
        f't{length / 2} 0 t{length / 2} 0 t{length / 2} 0 t{length / 2} 0" fill="none" stroke="{ink}" stroke-width="{gap / 3:.1f}"/>'
        for y in range(0, HEIGHT + gap, gap)
    )
    return waves


def placeholder_svg(*, title: str, year: int | None, genre_name: str | None = None) -> str:
    """An SVG poster (300x450) for a film without one: its title large, its year and first genre
    small, on a colour and one of eight patterns drawn from a hash of its title and year."""
    dice = _Dice(f"{title}\n{year or ''}")
    hue = dice(0, 359)
    second = (hue + dice(-40, 40)) % 360  # a neighbouring hue: one colour per film, not a muddy mix
    kind = PATTERNS[dice(0, len(PATTERNS) - 1)]
    top = f"hsl({hue},{dice(45, 70)}%,{dice(34, 44)}%)"
    bottom = f"hsl({second},{dice(45, 70)}%,{dice(10, 17)}%)"
    ink = f"hsla({(hue + dice(-20, 20)) % 360},85%,86%,0.{dice(11, 18)})"
    lines, size = _title_lines(title)
    line_height = size * 1.12
    block = line_height * len(lines)
    first_baseline = HEIGHT * 0.43 - block / 2 + size * 0.85
    title_text = "".join(
        f'<tspan x="{WIDTH / 2:.0f}" y="{first_baseline + i * line_height:.0f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    band_top, band_height = first_baseline - size * 1.05, block + size * 0.45
    label = escape(f"{title} ({year})" if year else title, {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{label}: no poster available">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0.35" y2="1"><stop offset="0" stop-color="{top}"/>'
        f'<stop offset="1" stop-color="{bottom}"/></linearGradient></defs>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>'
        f'{_pattern(kind, dice, ink)}'
        f'<rect x="0" y="{band_top:.0f}" width="{WIDTH}" height="{band_height:.0f}" fill="hsla({second},60%,8%,0.45)"/>'
        f'<text fill="#fff" font-family="Georgia, \'Times New Roman\', serif" font-size="{size}" font-weight="bold" '
        f'text-anchor="middle" letter-spacing="-0.5">{title_text}</text>'
        + (f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 64}" fill="hsla({hue},80%,92%,0.85)" font-family="system-ui, sans-serif" '
           f'font-size="17" letter-spacing="3" text-anchor="middle">{escape(genre_name.upper())}</text>' if genre_name else "")
        + (f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 28}" fill="#fff" font-family="system-ui, sans-serif" font-size="30" '
           f'font-weight="bold" letter-spacing="4" text-anchor="middle">{year}</text>' if year else "")
        + "</svg>"
    )


def poster_url(movie) -> str:
    """Where a movie's poster is: the stored one, else one hosted elsewhere, else the placeholder."""
    if movie.poster:
        return movie.poster.url
    return movie.poster_url or id_url("catalog:poster", movie.pk)


def movie_placeholder_svg(movie) -> str:
    genre = movie.genres.order_by("name").first()
    return placeholder_svg(title=movie.title, year=movie.year, genre_name=genre.name if genre else None)
