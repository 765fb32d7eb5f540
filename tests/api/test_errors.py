"""The api's named errors: one hierarchy, rendered by the shared problem handler with their status."""

from __future__ import annotations

import pytest

from services.api.invitations import service as invitations
from services.api.members import service as members
from services.api.principal import NotManager
from shared.errors import error_response


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (members.LastOwner(), 409),
        (members.CannotPromoteAboveSelf(), 403),
        (members.NotOwnName(), 403),
        (members.MemberNotFound(), 404),
        (NotManager(), 403),
        (invitations.AlreadyInvited(), 409),
        (invitations.AlreadyAccepted(), 409),
        (invitations.InvitationNotFound(), 404),
    ],
)
def test_named_errors_render_as_problems_of_their_status(error, status):
    """One hierarchy, one mapping: a domain error is rendered by the shared problem handler."""
    response = error_response(error, "/api/v1/x")
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert error.detail.encode() in response.body
