from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.home, name="home"),
    path("discovery/", views.set_discovery, name="discovery"),
    path("browse/", views.browse, name="browse"),
    path("genres/<slug:slug>/", views.genre, name="genre"),
    path("search/", views.search, name="search"),
    path("movies/<int:movie_id>/", views.movie_detail, name="movie"),
    path("movies/<int:movie_id>/poster.svg", views.movie_poster, name="poster"),
    path("movies/<int:movie_id>/rate/", views.rate_movie, name="rate"),
    path("movies/<int:movie_id>/watchlist/", views.toggle_watchlist, name="watchlist_toggle"),
    path("movies/<int:movie_id>/not-interested/", views.toggle_not_interested, name="not_interested_toggle"),
    path("directors/<int:person_id>/", views.director_detail, name="director"),
    path("actors/<int:person_id>/", views.actor_detail, name="actor"),
    path("me/ratings/", views.my_ratings, name="my_ratings"),
    path("me/watchlist/", views.my_watchlist, name="watchlist"),
    path("me/not-interested/", views.my_not_interested, name="not_interested"),
]
