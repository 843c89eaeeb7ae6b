"""API representations of accounts: sign-in, profile, data export, deletion."""
from rest_framework import serializers

from accounts.models import User
from accounts.services import PROFILE_FIELDS


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown only this once.")
    expiry = serializers.DateTimeField(help_text="When the token stops working; sign in again then.")


class ProfileSerializer(serializers.ModelSerializer):
    """The signed-in user's account; only the optional demographics can be changed here."""

    class Meta:
        model = User
        fields = ["id", "email", "date_joined", *PROFILE_FIELDS]
        read_only_fields = ["id", "email", "date_joined"]


class DeleteAccountSerializer(serializers.Serializer):
    confirmation = serializers.CharField(
        trim_whitespace=False, help_text="Your current password, typed to confirm."
    )


class _MovieReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    movielens_id = serializers.IntegerField(allow_null=True)
    imdb_id = serializers.CharField(allow_null=True)
    tmdb_id = serializers.IntegerField(allow_null=True)


class _ExportedRatingSerializer(serializers.Serializer):
    movie = _MovieReferenceSerializer()
    score = serializers.FloatField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class _ExportedTagSerializer(serializers.Serializer):
    movie = _MovieReferenceSerializer()
    tag = serializers.CharField()
    created_at = serializers.DateTimeField()


class _ExportedListEntrySerializer(serializers.Serializer):
    movie = _MovieReferenceSerializer()
    added_at = serializers.DateTimeField()


class _ExportedProfileSerializer(serializers.Serializer):
    email = serializers.CharField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)
    birth_year = serializers.IntegerField(allow_null=True)
    gender = serializers.CharField()
    occupation = serializers.CharField()
    country = serializers.CharField()
    source = serializers.CharField()
    favourite_genres = serializers.ListField(child=serializers.CharField())


class _ExportedHistoryImportSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="letterboxd or imdb")
    filename = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    rows_to_apply = serializers.IntegerField()
    ratings_saved = serializers.IntegerField()
    watchlist_saved = serializers.IntegerField()
    error = serializers.CharField()
    rows = serializers.ListField(child=serializers.DictField(), help_text="The uploaded rows as parsed and matched.")


class DataExportSerializer(serializers.Serializer):
    """Documents accounts.selectors.export_user_data(); the view returns that dict as it is."""

    profile = _ExportedProfileSerializer()
    ratings = _ExportedRatingSerializer(many=True)
    tags = _ExportedTagSerializer(many=True)
    watchlist = _ExportedListEntrySerializer(many=True)
    not_interested = _ExportedListEntrySerializer(many=True)
    history_imports = _ExportedHistoryImportSerializer(many=True)
