"""REST endpoints of "watch together": groups, their list, invitations, guests, members.

A thin adapter over recommendations.group_services and group_selectors, the functions the
pages use. A group is found only among the signed-in user's own groups (anyone else: 404);
members appear by name and predictions, never with their ratings.
"""
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import history_import
from recommendations import group_selectors, group_services, impressions
from recommendations.group_serializers import (
    GroupCreateSerializer,
    GroupRecommendationQuerySerializer,
    GroupRecommendationsSerializer,
    GroupSerializer,
    GroupUpdateSerializer,
    GuestImportSerializer,
    GuestUploadSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    JoinSerializer,
)
from recommendations.models import WatchGroupInvitation, WatchGroupMember

TAGS = ["groups"]


def _group(request, group_id):
    return get_object_or_404(group_selectors.groups_for_user(request.user).prefetch_related("members__group"),
                             pk=group_id)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _group_data(request, group) -> dict:
    return GroupSerializer(group, context={"request": request}).data


class Groups(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="My watch-together groups", responses=GroupSerializer(many=True), tags=TAGS)
    def get(self, request):
        groups = group_selectors.groups_for_user(request.user).prefetch_related("members__group")
        return Response(GroupSerializer(groups, many=True, context={"request": request}).data)

    @extend_schema(summary="Start a group (you are its owner and first member)", request=GroupCreateSerializer,
                   responses={201: GroupSerializer}, tags=TAGS)
    def post(self, request):
        group = group_services.create_group(owner=request.user, **_valid(GroupCreateSerializer, request.data))
        return Response(_group_data(request, group), status=status.HTTP_201_CREATED)


class Group(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="A group: its name, strategy and members", responses=GroupSerializer, tags=TAGS)
    def get(self, request, group_id):
        return Response(_group_data(request, _group(request, group_id)))

    @extend_schema(summary="Rename a group or change how it chooses (any member)", request=GroupUpdateSerializer,
                   responses=GroupSerializer, tags=TAGS)
    def patch(self, request, group_id):
        group = group_services.update_group(_group(request, group_id), by=request.user,
                                            **_valid(GroupUpdateSerializer, request.data))
        return Response(_group_data(request, group))

    @extend_schema(summary="Delete a group with its guests and invitations (owner only)",
                   responses={204: OpenApiResponse(description="Deleted.")}, tags=TAGS)
    def delete(self, request, group_id):
        group_services.delete_group(_group(request, group_id), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupRecommendations(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="The group's list: films none of the members rated or hid, with everyone's predicted stars",
        description="Ranked under the group's strategy. Each film carries every member's predicted stars and "
        "the reasons it is there; nobody's ratings are ever returned. `notice` explains an empty or "
        "non-personal list (fewer than two members, no model trained yet, filters too narrow).",
        parameters=[GroupRecommendationQuerySerializer],
        responses=GroupRecommendationsSerializer,
        tags=TAGS,
    )
    def get(self, request, group_id):
        group = _group(request, group_id)
        query = _valid(GroupRecommendationQuerySerializer, request.query_params.dict())
        filters = group_selectors.GroupFilters(genre=query.get("genre"), decade=query.get("decade"),
                                               max_runtime=query.get("max_runtime"), on_watchlist=query["on_watchlist"])
        group_list = group_selectors.group_recommendations(group, filters=filters, n=query["n"])
        impressions.log_shown(request.user, "group", [item.movie for item in group_list.items], in_experiment=False)
        data = {"group": group.pk, "strategy": group.strategy, "floor": group.floor, "notice": group_list.notice,
                "results": group_list.items}
        return Response(GroupRecommendationsSerializer(data, context={"request": request, "rating_map": {}}).data)


class Invitations(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="The group's invitation links that still work", responses=InvitationSerializer(many=True),
                   tags=TAGS)
    def get(self, request, group_id):
        invitations = group_selectors.active_invitations(_group(request, group_id))
        return Response(InvitationSerializer(invitations, many=True, context={"request": request}).data)

    @extend_schema(summary="A new invitation link (any member)", request=InvitationCreateSerializer,
                   responses={201: InvitationSerializer}, tags=TAGS)
    def post(self, request, group_id):
        group = _group(request, group_id)
        invitation = group_services.create_invitation(group, by=request.user,
                                                      **_valid(InvitationCreateSerializer, request.data))
        return Response(InvitationSerializer(invitation, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class Invitation(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Revoke an invitation link (its creator or the owner)",
                   responses={204: OpenApiResponse(description="Revoked.")}, tags=TAGS)
    def delete(self, request, group_id, invitation_id):
        invitation = get_object_or_404(WatchGroupInvitation, pk=invitation_id, group=_group(request, group_id))
        group_services.revoke_invitation(invitation, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class Join(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Join a group with an invitation token", request=JoinSerializer,
                   responses={200: GroupSerializer}, tags=TAGS)
    def post(self, request):
        data = _valid(JoinSerializer, request.data)
        member = group_services.join_group(token=data["token"], user=request.user, member_name=data["member_name"])
        return Response(_group_data(request, member.group))


class Guests(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Add a guest from their Letterboxd export (multipart upload)",
        description="The guest has no account: their matched ratings are kept for this group only, folded into "
        "the model when the list is computed, never returned, and deleted with the guest or the group. Titles "
        "that match several films are left out.",
        request={"multipart/form-data": GuestUploadSerializer},
        responses={201: GuestImportSerializer},
        tags=TAGS,
    )
    def post(self, request, group_id):
        group = _group(request, group_id)
        data = _valid(GuestUploadSerializer, request.data)
        upload = data["file"]
        if upload.size > history_import.MAX_UPLOAD_BYTES:
            raise ValidationError({"file": [f"{upload.name} is larger than {history_import.MAX_UPLOAD_BYTES // 2**20} MB."]})
        added = group_services.add_guest(group, by=request.user, name=data["name"], filename=upload.name,
                                         data=upload.read())
        return Response(GuestImportSerializer(added, context={"request": request}).data, status=status.HTTP_201_CREATED)


class Member(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Remove a member: yourself (leave), anyone (owner), a guest you added",
                   responses={204: OpenApiResponse(description="Removed.")}, tags=TAGS)
    def delete(self, request, group_id, member_id):
        member = get_object_or_404(WatchGroupMember, pk=member_id, group=_group(request, group_id))
        group_services.remove_member(member, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("groups/", Groups.as_view(), name="groups"),
    path("groups/join/", Join.as_view(), name="group-join"),
    path("groups/<int:group_id>/", Group.as_view(), name="group"),
    path("groups/<int:group_id>/recommendations/", GroupRecommendations.as_view(), name="group-recommendations"),
    path("groups/<int:group_id>/invitations/", Invitations.as_view(), name="group-invitations"),
    path("groups/<int:group_id>/invitations/<int:invitation_id>/", Invitation.as_view(), name="group-invitation"),
    path("groups/<int:group_id>/guests/", Guests.as_view(), name="group-guests"),
    path("groups/<int:group_id>/members/<int:member_id>/", Member.as_view(), name="group-member"),
]
