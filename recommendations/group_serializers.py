"""API representations of "watch together" groups: members appear by name, never with ratings."""
from rest_framework import serializers

from catalog.models import Genre
from catalog.serializers import MovieListSerializer, YEAR_MAX, YEAR_MIN
from recommendations import group_selectors, group_services
from recommendations.models import WatchGroup


FLOOR_HELP = ("Average without misery: nobody's predicted stars below this; one of "
              + ", ".join(f"{value:g}" for value, _ in WatchGroup.FLOORS) + ".")


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField(help_text="The name the member chose for this group.")
    is_guest = serializers.BooleanField(help_text="A guest has no account: their films came from an export.")
    is_owner = serializers.SerializerMethodField()
    is_you = serializers.SerializerMethodField()

    def get_is_owner(self, member) -> bool:
        return member.user_id is not None and member.user_id == member.group.owner_id

    def get_is_you(self, member) -> bool:
        return member.user_id is not None and member.user_id == self.context["request"].user.pk


class GroupSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk", read_only=True)
    name = serializers.CharField()
    strategy = serializers.ChoiceField(choices=WatchGroup.STRATEGIES)
    floor = serializers.FloatField(help_text=FLOOR_HELP)
    members = MemberSerializer(many=True, source="members.all")
    created_at = serializers.DateTimeField()


class GroupCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, help_text="The group's name.")
    member_name = serializers.CharField(max_length=40, help_text="Your name as the group will see it.")


class GroupUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False)
    strategy = serializers.ChoiceField(choices=WatchGroup.STRATEGIES, required=False,
                                       help_text="How the members' predictions become one list.")
    floor = serializers.FloatField(required=False, help_text=FLOOR_HELP)


class JoinSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=100, help_text="The token at the end of the invitation link.")
    member_name = serializers.CharField(max_length=40, help_text="Your name as the group will see it.")


class InvitationCreateSerializer(serializers.Serializer):
    days = serializers.ChoiceField(choices=group_services.INVITATION_DAYS, default=group_services.DEFAULT_INVITATION_DAYS,
                                   help_text="How long the link stays valid.")


class InvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    token = serializers.CharField()
    url = serializers.SerializerMethodField(help_text="The link to send: it opens the page to join the group.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    created_by_you = serializers.SerializerMethodField()

    def get_url(self, invitation) -> str:
        from django.urls import reverse

        return self.context["request"].build_absolute_uri(reverse("groups:join", args=[invitation.token]))

    def get_created_by_you(self, invitation) -> bool:
        return invitation.created_by_id == self.context["request"].user.pk


class GuestUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=40, help_text="The guest's name as the group will see it.")
    file = serializers.FileField(help_text="The guest's Letterboxd export: the zip, ratings.csv or watchlist.csv.")


class GuestImportSerializer(serializers.Serializer):
    member = MemberSerializer()
    ratings = serializers.IntegerField(help_text="Ratings matched to the catalogue (used for this group only).")
    watchlist = serializers.IntegerField(help_text="Watchlist films matched (for the watchlist filter).")
    ambiguous = serializers.IntegerField(help_text="Titles that matched several films: left out.")
    unmatched = serializers.IntegerField(help_text="Titles that matched no film: left out.")
    skipped = serializers.IntegerField(help_text="Rows that were not films or had no rating.")


class GroupRecommendationQuerySerializer(serializers.Serializer):
    genre = serializers.SlugRelatedField(queryset=Genre.objects.all(), slug_field="slug", required=False,
                                         help_text="Genre slug.")
    decade = serializers.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX,
                                      help_text="First year of a decade, e.g. 1990 for the 1990s.")
    max_runtime = serializers.IntegerField(required=False, min_value=1, max_value=1000,
                                           help_text="At most this many minutes (films of unknown length are left out).")
    on_watchlist = serializers.BooleanField(required=False, default=False,
                                            help_text="Only films on some member's watchlist.")
    n = serializers.IntegerField(required=False, default=group_selectors.LIST_SIZE, min_value=1,
                                 max_value=group_selectors.MAX_LIST_SIZE, help_text="How many.")

    def validate_decade(self, value):
        if value % 10:
            raise serializers.ValidationError("Give the first year of a decade, such as 1990.")
        return value


class PredictionSerializer(serializers.Serializer):
    member = serializers.IntegerField(source="member.pk", help_text="The member's id in the group.")
    name = serializers.CharField(source="member.name")
    predicted_stars = serializers.FloatField(source="stars", allow_null=True,
                                             help_text="Stars (0.5–5) the member is predicted to give; null "
                                                       "before a model is trained.")


class GroupRecommendationSerializer(serializers.Serializer):
    movie = MovieListSerializer()
    predictions = PredictionSerializer(many=True, help_text="Every member's predicted stars, in member order.")
    mean_predicted_stars = serializers.FloatField(source="mean_stars", allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why the film is on the list, in words.")


class GroupRecommendationsSerializer(serializers.Serializer):
    group = serializers.IntegerField()
    strategy = serializers.ChoiceField(choices=WatchGroup.STRATEGIES)
    floor = serializers.FloatField()
    notice = serializers.CharField(help_text="Why the list is empty or not personal yet; empty otherwise.")
    results = GroupRecommendationSerializer(many=True)
