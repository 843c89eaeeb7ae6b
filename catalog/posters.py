"""Generated SVG poster placeholders for movies without a poster URL."""
import textwrap
import zlib
from xml.sax.saxutils import escape

# Hue (degrees) per genre slug; other genres get a stable hue from their name.
GENRE_HUES = {
    "action": 8,
    "adventure": 28,
    "animation": 45,
    "children": 60,
    "comedy": 48,
    "crime": 220,
    "documentary": 160,
    "drama": 265,
    "fantasy": 290,
    "film-noir": 230,
    "horror": 350,
    "musical": 320,
    "mystery": 245,
    "romance": 335,
    "sci-fi": 190,
    "science-fiction": 190,
    "thriller": 200,
    "war": 100,
    "western": 30,
}
WIDTH, HEIGHT = 300, 450
MAX_LINES = 5


def genre_hue(slug: str | None) -> int:
    if not slug:
        return 215
    return GENRE_HUES.get(slug, zlib.crc32(slug.encode()) % 360)


def placeholder_svg(*, title: str, year: int | None, genre_slug: str | None, genre_name: str | None) -> str:
    """An SVG poster: the title wrapped on a gradient in the genre's colour, year and genre below."""
    hue = genre_hue(genre_slug)
    lines = textwrap.wrap(title, width=16) or ["Untitled"]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][:14].rstrip() + "…"
    font_size = 34 if len(lines) <= 3 else 28
    line_height = font_size * 1.2
    first_baseline = HEIGHT * 0.42 - (len(lines) - 1) * line_height / 2
    title_lines = "".join(
        f'<tspan x="{WIDTH / 2:.0f}" y="{first_baseline + i * line_height:.0f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    subtitle = " · ".join(part for part in (str(year) if year else "", genre_name or "") if part)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title, {chr(34): "&quot;"})} (no poster available)">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},55%,42%)"/><stop offset="1" stop-color="hsl({hue},60%,16%)"/>'
        f"</linearGradient></defs>"
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>'
        f'<rect x="14" y="14" width="{WIDTH - 28}" height="{HEIGHT - 28}" fill="none" '
        f'stroke="hsla({hue},80%,85%,0.35)" stroke-width="2" rx="6"/>'
        f'<text fill="#fff" font-family="Georgia, \'Times New Roman\', serif" font-size="{font_size}" '
        f'font-weight="bold" text-anchor="middle">{title_lines}</text>'
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 48}" fill="hsla({hue},80%,92%,0.9)" '
        f'font-family="system-ui, sans-serif" font-size="20" text-anchor="middle">{escape(subtitle)}</text>'
        f"</svg>"
    )


def movie_placeholder_svg(movie) -> str:
    genre = movie.genres.order_by("name").first()
    return placeholder_svg(
        title=movie.title,
        year=movie.year,
        genre_slug=genre.slug if genre else None,
        genre_name=genre.name if genre else None,
    )
