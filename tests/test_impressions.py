"""The site measures its recommendations: impressions, outcomes, experiments, statistics, retention."""
import math
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import delete_account
from catalog.models import Movie
from recommendations import cache, experiments, impression_stats, impressions, selectors, services, tasks
from recommendations.group_services import WatchGroupMember, create_group
from recommendations.models import Experiment, Impression, ImpressionDaily, ModelVersion
from tests.factories import make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue


@pytest.fixture
def world(settings, tmp_path, django_capture_on_commit_callbacks):
    """The taste catalogue with one published model; a Western fan signed in."""
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue()
    with django_capture_on_commit_callbacks(execute=True):
        version = services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    fan = groups["Western"][0]
    for movie in Movie.objects.filter(genres__name="Musical").exclude(ratings__user=fan)[:2]:
        make_rating(fan, movie, 5.0)  # liked lately: the "because you liked" row
    return {"groups": groups, "version": version, "fan": fan}


def shown(user, row=None):
    query = Impression.objects.filter(user=user).order_by("pk")
    return list(query.filter(row=row) if row else query)


@pytest.mark.django_db(transaction=True)
def test_every_surface_showing_recommendations_logs_its_impressions(world, client):
    fan, version = world["fan"], world["version"]
    client.force_login(fan)

    home = client.get(reverse("catalog:home"))
    for row in home.context["rows"]:
        logged = shown(fan, row.key)
        assert [i.movie_id for i in logged] == [item.movie.pk for item in row.items], row.key
        assert [i.position for i in logged] == list(range(len(row.items)))
        assert {i.model_version_id for i in logged} == {version.pk}
    assert {row.key for row in home.context["rows"]} >= {"top", "because", "trending"}

    movie = home.context["rows"][0].items[0].movie
    page = client.get(reverse("catalog:movie", args=[movie.pk]))
    assert [i.movie_id for i in shown(fan, "similar")] == [m.pk for m in page.context["similar"]]

    Impression.objects.all().delete()
    for row in ("top", "genre", "trending", "because"):
        query = {"row": row, "n": 5, **({"genre": "western"} if row == "genre" else {})}
        results = client.get("/api/v1/recommendations/", query).json()["results"]
        assert [i.movie_id for i in shown(fan, row)] == [r["movie"]["id"] for r in results], row
    results = client.get(f"/api/v1/movies/{movie.pk}/similar/").json()["results"]
    assert [i.movie_id for i in shown(fan, "similar")] == [r["id"] for r in results]

    group = create_group(owner=fan, name="Friday", member_name="Fan")
    WatchGroupMember.objects.create(group=group, user=world["groups"]["Horror"][0], name="Other")
    page = client.get(reverse("groups:detail", args=[group.pk]))
    assert [i.movie_id for i in shown(fan, "group")] == [item.movie.pk for item in page.context["list"].items]
    assert shown(fan, "group")
    Impression.objects.filter(row="group").delete()
    results = client.get(f"/api/v1/groups/{group.pk}/recommendations/").json()["results"]
    assert [i.movie_id for i in shown(fan, "group")] == [r["movie"]["id"] for r in results]

    client.logout()
    before = Impression.objects.count()
    client.get(reverse("catalog:home"))
    assert Impression.objects.count() == before, "guests are not logged"


@pytest.mark.django_db(transaction=True)
def test_outcomes_are_linked_to_the_latest_impression_within_the_window(world, client, settings):
    fan = world["fan"]
    client.force_login(fan)
    rows = client.get(reverse("catalog:home")).context["rows"]
    opened, rated, kept, hidden = (item.movie for item in rows[0].items[:4])

    client.get(reverse("catalog:movie", args=[opened.pk]))
    client.post(reverse("catalog:rate", args=[rated.pk]), {"score": "4.5"})
    client.post(reverse("catalog:watchlist_toggle", args=[kept.pk]), {"action": "add"})
    client.post(reverse("catalog:not_interested_toggle", args=[hidden.pk]), {"action": "add"})

    # Each outcome counts for the latest time the film was shown (the film page's similar row may
    # have shown it again after the home page).
    top = {i.movie_id: i for i in Impression.objects.filter(user=fan).order_by("shown_at", "pk")}
    assert top[opened.pk].opened_at is not None and top[opened.pk].rated_at is None
    assert (top[rated.pk].rated_at is not None, top[rated.pk].stars) == (True, 4.5)
    assert top[kept.pk].watchlisted_at is not None
    assert top[hidden.pk].hidden_at is not None
    untouched = [i for i in top.values() if i.movie_id not in {opened.pk, rated.pk, kept.pk, hidden.pk}]
    assert untouched and all(i.opened_at is None and i.rated_at is None for i in untouched)
    assert Impression.objects.filter(user=fan).exclude(opened_at=None).count() == 1
    assert Impression.objects.filter(user=fan).exclude(rated_at=None).count() == 1

    # Outside the window an outcome counts for nothing; a film never shown links nothing.
    later = timezone.now() + timedelta(hours=settings.IMPRESSIONS_OUTCOME_WINDOW_HOURS + 1)
    other = untouched[0]
    impressions.log_outcome(fan, other.movie_id, "opened", at=later)
    never_shown = Movie.objects.exclude(pk__in=[i.movie_id for i in shown(fan)]).first()
    impressions.log_outcome(fan, never_shown.pk, "opened")
    other.refresh_from_db()
    assert other.opened_at is None
    assert not Impression.objects.filter(movie=never_shown).exists()


def test_assignment_is_deterministic_sticky_and_follows_the_split():
    arms = [experiments.arm_of(7, user_id, 0.3) for user_id in range(1, 4001)]
    assert arms == [experiments.arm_of(7, user_id, 0.3) for user_id in range(1, 4001)]
    share = arms.count("B") / len(arms)
    assert abs(share - 0.3) < 0.03  # 4,000 draws: 3 standard deviations is 0.022
    # Another experiment shuffles users anew (not the same people always in B).
    other = [experiments.arm_of(8, user_id, 0.3) for user_id in range(1, 4001)]
    assert 0.5 < sum(a == b for a, b in zip(arms, other)) / len(arms) < 0.7


def test_statistics_match_values_computed_by_hand():
    # Wilson interval for 30 successes in 200: p = 0.15, z = 1.959964
    z = 1.959963984540054
    p, n = 0.15, 200
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = impression_stats.wilson(30, 200)
    assert low == pytest.approx(centre - half, abs=1e-9) and high == pytest.approx(centre + half, abs=1e-9)
    assert (round(low, 4), round(high, 4)) == (0.1071, 0.2061)
    # Two proportions 30/200 against 50/200: pooled 0.2, se = sqrt(0.2 * 0.8 * (2 / 200)) = 0.04, z = 2.5
    z_value, p_value = impression_stats.two_proportion_z(30, 200, 50, 200)
    assert z_value == pytest.approx(2.5)
    assert p_value == pytest.approx(0.012419, abs=1e-6)
    assert impression_stats.two_proportion_z(0, 0, 1, 10) is None


@pytest.mark.django_db
def test_experiment_report_counts_each_arm_and_says_when_the_difference_is_significant():
    movie = Movie.objects.create(title="Heat", year=1995)
    user_a, user_b = make_user(), make_user()
    version = ModelVersion.objects.create(status=ModelVersion.Status.PUBLISHED, artifact="x", is_current=True)
    experiment = Experiment.objects.create(name="t", a_version=version, b_discovery=4)
    now = timezone.now()

    def add(user, arm, count, opened, rated, stars=4.0):
        Impression.objects.bulk_create([Impression(
            user=user, movie=movie, row="top", position=k, model_version=version, experiment=experiment, arm=arm,
            shown_at=now, opened_at=now if k < opened else None, rated_at=now if k < rated else None,
            stars=stars if k < rated else None) for k in range(count)])

    add(user_a, "A", 200, opened=30, rated=10, stars=3.0)
    add(user_b, "B", 200, opened=50, rated=12, stars=4.0)
    report = impression_stats.experiment_report(experiment)
    ctr, hits = report.comparisons
    assert (ctr.a, ctr.b) == (0.15, 0.25)
    assert ctr.z == pytest.approx(2.5) and ctr.significant and ctr.verdict.startswith("arm B is higher")
    assert (hits.a, hits.b) == (0.05, 0.06) and not hits.significant
    assert report.arms["A"].mean_stars == 3.0 and report.arms["B"].mean_stars == 4.0
    assert report.users == {"A": 1, "B": 1}


@pytest.mark.django_db(transaction=True)
def test_an_experiment_serves_each_arm_its_own_version_and_keeps_their_cached_lists_apart(world, client, settings,
                                                                                          django_capture_on_commit_callbacks):
    first = world["version"]
    second = services.fit_model(hyperparameters={**FAST_FIT, "blend_lightfm": 0.9, "blend_neural": 0.0},
                                progress=False)
    experiment = experiments.start_experiment(name="v1 vs v2", a_version=first, b_version=second)
    users = [u for group in world["groups"].values() for u in group]
    in_b = next(u for u in users if experiments.arm_of(experiment.pk, u.pk, 0.5) == "B")
    in_a = next(u for u in users if experiments.arm_of(experiment.pk, u.pk, 0.5) == "A")

    assert selectors.model_for_user(in_b).version_id == second.pk
    assert selectors.model_for_user(in_a).version_id == first.pk
    for user, arm, version in ((in_a, "A", first), (in_b, "B", second)):
        client.force_login(user)
        client.get(reverse("catalog:home"))
        logged = shown(user)
        assert logged and {(i.arm, i.model_version_id, i.experiment_id) for i in logged} == {(arm, version.pk, experiment.pk)}
        key = cache.list_key(f"{version.pk}x{experiment.pk}{arm}", user.pk)
        assert cache.cache.get(key), "the arm's list is cached under a key of its own"
        top = [i.movie_id for i in logged if i.row == "top"]
        assert set(top) <= {item["movie_id"] for item in cache.cache.get(key)}

    # The arms' versions are kept from pruning while the experiment runs.
    settings.RECOMMENDER_ROLLBACK_VERSIONS = 0
    services.prune_artifacts()
    second.refresh_from_db()
    assert second.artifact

    # Ending it and promoting B publishes B; the cached lists of the arms are forgotten with the account.
    with django_capture_on_commit_callbacks(execute=True):
        experiments.end_experiment(experiment, keep="B")
    second.refresh_from_db()
    assert second.is_current
    experiments.expire_running_experiment()
    assert experiments.serving_for(in_b) is None


@pytest.mark.django_db(transaction=True)
def test_deleting_an_account_deletes_its_impressions_and_forgets_its_arm_lists(world, client):
    fan = world["fan"]
    experiment = experiments.start_experiment(name="dial", b_discovery=4, a_discovery=0)
    client.force_login(fan)
    client.get(reverse("catalog:home"))
    arm = experiments.arm_of(experiment.pk, fan.pk, 0.5)
    key = cache.list_key(f"{world['version'].pk}x{experiment.pk}{arm}", fan.pk)
    assert shown(fan) and cache.cache.get(key)
    other = world["groups"]["Horror"][0]
    impressions.log_shown(other, "top", Movie.objects.all()[:3])

    user_id = fan.pk
    delete_account(user=fan)

    assert not Impression.objects.filter(user_id=user_id).exists()
    assert Impression.objects.filter(user=other).count() == 3
    assert cache.cache.get(key) is None


@pytest.mark.django_db
def test_old_impressions_are_aggregated_by_day_then_pruned_and_the_figures_stay(settings):
    settings.IMPRESSIONS_RETENTION_DAYS = 30
    movie, user = Movie.objects.create(title="Heat", year=1995), make_user()
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    Impression.objects.bulk_create(
        [Impression(user=user, movie=movie, row="top", position=k, shown_at=old, opened_at=old if k < 2 else None,
                    rated_at=old if k < 1 else None, stars=5.0 if k < 1 else None) for k in range(5)]
        + [Impression(user=user, movie=movie, row="top", position=k, shown_at=recent) for k in range(3)])
    before = impression_stats.by_row_and_version()

    assert impressions.aggregate_and_prune(now=now) == 5
    assert impressions.aggregate_and_prune(now=now) == 0
    assert Impression.objects.count() == 3
    daily = ImpressionDaily.objects.get()
    assert (daily.day, daily.impressions, daily.opened, daily.rated, daily.stars_sum) == (
        timezone.localtime(old).date(), 5, 2, 1, 5.0)
    after = impression_stats.by_row_and_version()
    assert [(r, v, f.impressions, f.opened, f.rated, f.mean_stars) for r, v, f in after] == \
        [(r, v, f.impressions, f.opened, f.rated, f.mean_stars) for r, v, f in before] == [("top", None, 8, 2, 1, 5.0)]


@pytest.mark.django_db(transaction=True)
def test_the_redis_buffer_is_flushed_into_the_database_by_a_real_worker(redis_cache, celery_worker):
    movies = [Movie.objects.create(title=f"Film {k}", year=2000) for k in range(3)]
    user, gone = make_user(), make_user()
    impressions.log_shown(user, "top", movies)
    impressions.log_shown(gone, "top", movies)
    impressions.log_outcome(user, movies[1].pk, "rated", stars=3.5)
    gone_id = gone.pk
    gone.delete()
    assert impressions.buffered() == 7
    assert not Impression.objects.exists(), "nothing is written to the database by the page"

    tasks.flush_impressions.delay()
    deadline = time.monotonic() + 30
    while impressions.buffered() and time.monotonic() < deadline:
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while Impression.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)

    assert impressions.buffered() == 0
    logged = shown(user)
    assert [(i.movie_id, i.position, i.stars) for i in logged] == [
        (movies[0].pk, 0, None), (movies[1].pk, 1, 3.5), (movies[2].pk, 2, None)]
    assert not Impression.objects.filter(user_id=gone_id).exists()


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_pages_answer_and_impressions_are_dropped(private_redis, world, client):
    fan = world["fan"]
    client.force_login(fan)
    private_redis.kill()
    before = impressions.dropped
    assert client.get(reverse("catalog:home")).status_code == 200
    assert client.get("/api/v1/recommendations/?row=top").status_code == 200
    assert impressions.dropped > before
    assert not Impression.objects.exists()


@pytest.mark.django_db
def test_logging_can_be_switched_off(settings):
    settings.IMPRESSIONS_ENABLED = False
    impressions.log_shown(make_user(), "top", [Movie.objects.create(title="Heat", year=1995)])
    assert not Impression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_staff_start_an_experiment_and_see_each_arm_on_the_model_page(world, client):
    staff = make_user(is_staff=True, is_superuser=True)
    fan = world["fan"]
    client.force_login(fan)
    client.get(reverse("catalog:home"))
    client.get(reverse("catalog:movie", args=[shown(fan, "top")[0].movie_id]))
    client.force_login(staff)
    page = reverse("admin:recommendations_modelversion_changelist")
    response = client.post(reverse("admin:recommendations_experiment_start"), {
        "name": "dial test", "a_version": "", "a_discovery": "", "b_version": "", "b_discovery": "4", "b_share": "0.5"})
    assert response.status_code == 302
    experiment = Experiment.objects.get(status=Experiment.Status.RUNNING)
    assert (experiment.b_discovery, experiment.a_discovery) == (4, None)
    experiments.expire_running_experiment()
    client.force_login(fan)
    client.get(reverse("catalog:home"))
    client.force_login(staff)

    text = client.get(page).text
    assert "Recommendations shown" in text and "dial test" in text
    assert f"v{world['version'].pk}" in text and "click-through" in text
    assert client.get(reverse("admin:recommendations_impressions_plot")).content.startswith(b"\x89PNG")
    assert client.get(reverse("admin:recommendations_experiment_plot", args=[experiment.pk])).content.startswith(b"\x89PNG")

    client.post(reverse("admin:recommendations_experiment_end", args=[experiment.pk]), {"keep": ""})
    experiment.refresh_from_db()
    assert (experiment.status, experiment.result) == ("ended", "Kept the current version.")
