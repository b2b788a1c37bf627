"""Who may do what (issue 22, finding 3): every change to a role, a permission or their links leaves an event,
from whichever side of each relation it is made, clears and renames included."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.db.models.signals import m2m_changed

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

AUTH_M2M = [(model, field) for model in apps.get_app_config("auth").get_models() for field in model._meta.many_to_many]


def _events():
    return list(AuditEvent.objects.order_by("id").values_list("action", "object_id", "changes"))


def test_every_auth_relation_is_heard():
    assert {f"{model.__name__}.{field.name}" for model, field in AUTH_M2M} == {
        "User.groups",
        "User.user_permissions",
        "Group.permissions",
    }
    for _, field in AUTH_M2M:
        assert m2m_changed.has_listeners(field.remote_field.through), field


def _permission(codename="view_activation_code"):
    return Permission.objects.get(codename=codename)


@pytest.mark.parametrize(
    ("change", "action"),
    [
        (lambda user, group, perm: user.groups.add(group), "user.roles"),
        (lambda user, group, perm: group.user_set.add(user), "user.roles"),
        (lambda user, group, perm: user.user_permissions.add(perm), "user.permissions"),
        (lambda user, group, perm: perm.user_set.add(user), "user.permissions"),
        (lambda user, group, perm: group.permissions.add(perm), "group.permissions"),
        (lambda user, group, perm: perm.group_set.add(group), "group.permissions"),
    ],
)
def test_a_grant_from_either_side_is_recorded_then_its_removal(change, action):
    user = User.objects.create_user("kim", password="pw-kim-12345", is_staff=True)
    group = Group.objects.create(name="auditors")
    perm = _permission()
    before = AuditEvent.objects.count()
    change(user, group, perm)
    [event] = AuditEvent.objects.filter(id__gt=0).order_by("-id")[:1]
    assert AuditEvent.objects.count() == before + 1 and event.action == action
    owner = group if action == "group.permissions" else user
    assert event.object_id == str(owner.pk)
    added, now = next(iter(event.changes.values()))
    assert added.startswith("add") and now  # what was added, and what the owner holds now
    # and taken away again, by a clear from the other side
    if action == "user.roles":
        group.user_set.clear()
    elif action == "user.permissions":
        perm.user_set.clear()
    else:
        perm.group_set.clear()
    last = AuditEvent.objects.latest("id")
    assert last.action == action and next(iter(last.changes.values()))[0].startswith("remove")
    assert next(iter(last.changes.values()))[1] == []


def test_a_role_created_renamed_and_deleted_is_recorded():
    group = Group.objects.create(name="auditors")
    group.name = "read-only auditors"
    group.save()
    group.delete()
    actions = [action for action, _, _ in _events()]
    assert actions[-3:] == ["group.create", "group.rename", "group.delete"]


def test_granting_a_permission_to_a_role_through_the_admin_page_is_recorded(client, admin_user):
    """The reported case: "can see activation codes" added to viewer on the role's page."""
    from tests.helpers import role

    viewer = role("viewer")
    client.force_login(admin_user)
    wanted = [*viewer.permissions.values_list("pk", flat=True), _permission().pk]
    answer = client.post(f"/admin/auth/group/{viewer.pk}/change/", {"name": "viewer", "permissions": wanted})
    assert answer.status_code == 302
    event = AuditEvent.objects.filter(action="group.permissions").latest("id")
    assert event.object_id == str(viewer.pk) and "subscriptions.view_activation_code" in event.changes["permissions"][0]
    assert event.actor_name == "admin"
