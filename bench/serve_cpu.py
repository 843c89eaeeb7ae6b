"""CPU time, SQL queries and Redis round trips per request of the endpoints `bench serve` loads,
in one process through Django's test client (what load on a shared machine does not move).

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6471/0 DEBUG=0 ALLOWED_HOSTS=testserver \
    SECRET_KEY=x python -m bench.serve_cpu [--requests 100] [--rounds 5] [--only top,movie]

The database must hold a catalogue with ratings and a trained model (`import_movielens`,
`train_model`). Like `bench serve`: up to 50 MovieLens users with 20 to 1,000 ratings, signed in
with an API token and a site session, rotating over the users, the 300 most rated films and 8
genres. Each endpoint is requested once per distinct request first (its kept parts warmed, as
`bench serve` warms each rotation), then ``--requests`` times in each of ``--rounds`` rounds: the
median round's CPU time per request is shown, with the fastest and slowest round's. Redis round trips are counted at redis-py's connection (a pipeline or a script is one).
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")

GENRES = ["drama", "comedy", "action", "thriller", "romance", "adventure", "crime", "sci-fi"]


def _count_round_trips():
    """A list whose first item counts what redis-py sends to a server (each send is a round trip)."""
    import redis.connection

    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        sent[0] += 1
        return original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command
    return sent


def _setup(users: int):
    from django.db.models import Count
    from django.test import Client

    from accounts.models import User
    from accounts.services import issue_api_token
    from catalog.models import Genre, Movie

    counts = dict(User.objects.annotate(n=Count("ratings")).filter(n__gt=0).values_list("pk", "n"))
    chosen = sorted(pk for pk, n in counts.items() if 20 <= n <= 1000)[:users]
    signed_in = []
    for pk in chosen:
        user = User.objects.get(pk=pk)
        client = Client()
        client.force_login(user)
        signed_in.append({"token": issue_api_token(user=user)[1], "client": client})
    slugs = set(Genre.objects.values_list("slug", flat=True))
    genres = [slug for slug in GENRES if slug in slugs] or sorted(slugs)[:8]
    movies = list(Movie.objects.order_by("-rating_count", "pk").values_list("pk", flat=True)[:300])
    return signed_in, genres, movies


def _plan(users, genres, movies) -> dict:
    """{endpoint: [(client, path, headers)]} rotated as bench serve rotates them."""
    from django.test import Client

    api, anonymous, n = "/api/v1/recommendations/", Client(), len(users)
    many = max(n, 200)

    def token(user):
        return {"HTTP_AUTHORIZATION": f"Token {user['token']}"}

    return {
        "healthz": [(anonymous, "/healthz", {})],
        "top": [(anonymous, f"{api}?row=top&n=20", token(u)) for u in users],
        "genre": [(anonymous, f"{api}?row=genre&genre={genres[i % len(genres)]}&n=20", token(users[i % n]))
                  for i in range(many)],
        "because": [(anonymous, f"{api}?row=because&n=20", token(u)) for u in users],
        "similar": [(anonymous, f"{api}?row=similar&movie={movies[i % len(movies)]}&n=20", token(users[i % n]))
                    for i in range(many)],
        "movie": [(users[i % n]["client"], f"/movies/{movies[i % len(movies)]}/", {}) for i in range(many)],
        "home": [(u["client"], "/", {}) for u in users],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="measured requests per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each endpoint (the median is shown)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated endpoints (default: all)")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import connection

    sent, executed = _count_round_trips(), [0]

    def count_query(execute, sql, params, many, context):
        executed[0] += 1
        return execute(sql, params, many, context)

    plan = _plan(*_setup(args.users))
    names = [name for name in args.only.split(",") if name] or list(plan)
    cpu, queries, round_trips = {name: [] for name in names}, dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    for name in names:
        requests = plan[name]
        for client, path, headers in requests:  # warm: every distinct request once, just before
            response = client.get(path, secure=True, **headers)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
        for round_number in range(args.rounds):
            rounds = [requests[(round_number * args.requests + i) % len(requests)] for i in range(args.requests)]
            sent[0] = executed[0] = 0
            with connection.execute_wrapper(count_query):
                started = time.process_time()
                for client, path, headers in rounds:
                    client.get(path, secure=True, **headers)
                cpu[name].append(1000 * (time.process_time() - started) / len(rounds))
            queries[name] += executed[0]
            round_trips[name] += sent[0]
    measured = args.rounds * args.requests
    print(f"{'endpoint':10} {'CPU ms/req (median; min-max of rounds)':>40} {'queries':>8} {'redis':>6}")
    for name in names:
        print(f"{name:10} {statistics.median(cpu[name]):12.2f} ({min(cpu[name]):.2f}-{max(cpu[name]):.2f})"
              f"{'':>14} {queries[name] / measured:8.2f} {round_trips[name] / measured:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
