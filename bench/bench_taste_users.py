"""Two people of one clear taste, as a running site serves them: a sci-fi fan and a romance fan.

Against a running site (BENCH_SITE_URL, default http://127.0.0.1:8111) whose database holds
ml-latest-small with its metadata and a trained model (README "Real data", `train_model`):
each fan rates 9 films of their taste at 4.5–5 stars and 3 of the other's at 1 star through
the REST API, then this prints their home page rows (titles, predicted stars, explanations,
read from the HTML a browser gets), the predicted stars of unseen films of their taste and of
the taste they disliked, and the API's top picks.

The two accounts are created in the site's database (the same DATABASE_URL as the site: the
API has no sign-up, and the website's sign-up waits for an emailed link); everything else goes
over HTTP. Each run makes new accounts (a timestamp in the email), so runs do not interfere.
Not a timing: the figures are what a user sees, to compare before/after a change.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from http.cookiejar import CookieJar

SITE = os.environ.get("BENCH_SITE_URL", "http://127.0.0.1:8111").rstrip("/")
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "3"))
PASSWORD = "taste-Bench-passw0rd"

SCI_FI = [("The Matrix", 1999), ("Star Wars: Episode IV - A New Hope", 1977), ("The Terminator", 1984),
          ("Blade Runner", 1982), ("2001: A Space Odyssey", 1968), ("Alien", 1979),
          ("Star Wars: Episode V - The Empire Strikes Back", 1980), ("Twelve Monkeys", 1995),
          ("Terminator 2: Judgment Day", 1991)]
ROMANCE = [("Pretty Woman", 1990), ("Sleepless in Seattle", 1993), ("Notting Hill", 1999),
           ("When Harry Met Sally...", 1989), ("Four Weddings and a Funeral", 1994), ("Titanic", 1997),
           ("Casablanca", 1942), ("While You Were Sleeping", 1995), ("Shakespeare in Love", 1998)]
# Unseen films close to each fan's likes and to their dislikes (the same lists on every site, so
# two versions are compared on the same films): the contrast check asks that films close
# to the dislikes are predicted at least 1 star below films close to the likes, and at most 3.5.
MORE_SCI_FI = [("Aliens", 1986), ("Star Wars: Episode VI - Return of the Jedi", 1983), ("Total Recall", 1990),
               ("Gattaca", 1997), ("The Fifth Element", 1997), ("Jurassic Park", 1993), ("Predator", 1987),
               ("Minority Report", 2002)]
MORE_ROMANCE = [("You've Got Mail", 1998), ("Runaway Bride", 1999), ("Bridget Jones's Diary", 2001),
                ("My Best Friend's Wedding", 1997), ("Love Actually", 2003), ("Sense and Sensibility", 1995),
                ("Ghost", 1990), ("Jerry Maguire", 1996)]
FANS = {
    "sci-fi fan": (SCI_FI, ROMANCE[:3], MORE_SCI_FI, MORE_ROMANCE),
    "romance fan": (ROMANCE, [("Alien", 1979), ("The Terminator", 1984), ("The Matrix", 1999)], MORE_ROMANCE,
                    MORE_SCI_FI),
}


class Client:
    """A cookie-keeping HTTP client speaking JSON to the API and forms to the website."""

    def __init__(self):
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = None

    def request(self, method, path, *, data=None, json_body=None, headers=None):
        headers = dict(headers or {})
        body = None
        if json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif data is not None:
            body, headers["Content-Type"] = urllib.parse.urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
        if self.token and path.startswith("/api/"):
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(SITE + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def api(self, method, path, body=None):
        status, text = self.request(method, path, json_body=body, headers={"Accept": "application/json"})
        if status >= 400:
            raise RuntimeError(f"{method} {path} answered {status}: {text[:300]}")
        return json.loads(text) if text else None

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")


def create_account(email: str) -> None:
    """A verified site account in the site's database (DATABASE_URL)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)


def find_movie(client: Client, title: str, year: int) -> dict:
    results = client.api("GET", "/api/v1/movies/?" + urllib.parse.urlencode({"q": title}))["results"]
    for movie in results:
        if movie["title"] == title and movie.get("year") == year:
            return movie
    raise RuntimeError(f"{title} ({year}) is not in the catalogue: import ml-latest-small first")


class HomeRows(HTMLParser):
    """Rows of the signed-in home page: [(title, [(film, predicted stars, explanation)])]."""

    def __init__(self):
        super().__init__()
        self.rows, self.field, self.card = [], None, None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section" and "shelf" in classes and dict(attrs).get("data-row"):
            self.rows.append(["", []])
            self.field = "row"
        elif tag == "article" and "card" in classes and self.rows:
            self.card = {"title": "", "predicted": "", "why": ""}
            self.rows[-1][1].append(self.card)
        elif self.card is not None and ("card__title" in classes):
            self.field = "title"
        elif self.card is not None and "predicted" in classes:
            self.field = "predicted"
        elif self.card is not None and "card__why" in classes:
            self.field = "why"

    def handle_endtag(self, tag):
        if tag in ("h2", "h3", "span", "p"):
            self.field = None
        if tag == "article":
            self.card = None

    def handle_data(self, data):
        if self.field == "row" and self.rows and not self.rows[-1][0]:
            self.rows[-1][0] = data.strip()
        elif self.field and self.card is not None:
            self.card[self.field] += data


def sign_in_to_website(client: Client, email: str) -> None:
    client.request("GET", "/accounts/login/")
    status, _ = client.request("POST", "/accounts/login/", data={
        "login": email, "password": PASSWORD, "csrfmiddlewaretoken": client.csrf()}, headers={"Referer": SITE + "/"})
    if status >= 400:
        raise RuntimeError(f"website sign-in answered {status}")


def print_contrast(client: Client, close_to_likes, close_to_dislikes) -> None:
    """Predicted stars of unseen films close to the likes and to the dislikes, and the gap."""
    means = {}
    for name, films in (("close to the likes", close_to_likes), ("close to the dislikes", close_to_dislikes)):
        stars = []
        for title, year in films:
            movie = find_movie(client, title, year)
            value = client.api("GET", f"/api/v1/movies/{movie['id']}/predicted-rating/")["predicted_rating"]
            stars.append((title, value))
        known = [v for _, v in stars if v is not None]
        means[name] = sum(known) / len(known) if known else float("nan")
        listed = ", ".join(f"{t} {'-' if v is None else f'{v:.1f}'}" for t, v in stars)
        print(f"    {name}: mean {means[name]:.2f}, max {max(known, default=float('nan')):.1f} ({listed})")
    print(f"    gap: {means['close to the likes'] - means['close to the dislikes']:.2f} stars")


def run_fan(label: str, liked, disliked, close_to_likes, close_to_dislikes) -> None:
    email = f"taste-{label.split()[0]}-{int(time.time() * 1000)}@bench.example"
    create_account(email)
    client = Client()
    client.token = client.api("POST", "/api/v1/auth/token/", {"email": email, "password": PASSWORD})["token"]
    for n, (title, year) in enumerate(liked):
        client.api("POST", "/api/v1/me/ratings/", {"movie": find_movie(client, title, year)["id"], "score": 5.0 if n % 2 == 0 else 4.5})
    for title, year in disliked:
        client.api("POST", "/api/v1/me/ratings/", {"movie": find_movie(client, title, year)["id"], "score": 1.0})
    time.sleep(SETTLE_SECONDS)  # the per-user refresh is debounced (RECOMMENDER_REFRESH_DEBOUNCE_SECONDS)

    print(f"\n##### {label}: rated {', '.join(t for t, _ in liked)} at 4.5-5; {', '.join(t for t, _ in disliked)} at 1")
    sign_in_to_website(client, email)
    status, page = client.request("GET", "/")
    parser = HomeRows()
    parser.feed(page)
    for title, cards in parser.rows:
        print(f"\n  [home] {title}")
        for card in cards:
            predicted = card["predicted"].strip().removeprefix("For you: ") or "-"
            print(f"    {card['title'].strip():<55.55} {predicted:>4}  {' '.join(card['why'].split())}")
    print("\n  [api] predicted stars of unseen films (/api/v1/movies/<id>/predicted-rating/)")
    print_contrast(client, close_to_likes, close_to_dislikes)
    picks = client.api("GET", "/api/v1/recommendations/?row=top&n=12")["results"]
    print("\n  [api] /api/v1/recommendations/?row=top&n=12")
    for item in picks:
        stars = "-" if item["predicted_stars"] is None else f"{item['predicted_stars']:.1f}"
        print(f"    {item['movie']['title']:<55.55} {stars:>4}  {item['explanation']}")


def main():
    print(f"site: {SITE}")
    for label, (liked, disliked, close_to_likes, close_to_dislikes) in FANS.items():
        run_fan(label, liked, disliked, close_to_likes, close_to_dislikes)
