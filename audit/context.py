"""Who is acting, for the audit trail: set once by each door's frame, read by the services when they record.

- a web request (middleware): the signed-in user, resolved when an event is recorded, so DRF's token
  authentication (which runs in the view, after the middleware) is seen too; plus the request id and address;
- a Celery task: `job:<task name>` (the signal receivers below);
- anything else, i.e. a management command or a shell: `cli:<operating-system user>`;
- an activation names its instance itself (`Actor.instance`), whoever carries the request.
"""

import contextvars
import ipaddress
import os
import pwd
from contextlib import contextmanager
from dataclasses import dataclass

from celery.signals import task_postrun, task_prerun

from config.limits import client_ip
from config.logging import request_id_var


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "cli", "job", "instance"
    name: str  # username at the time, OS user, task name, instance UUID
    user_id: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.kind == "user" else f"{self.kind}:{self.name}"

    @classmethod
    def instance(cls, instance_identifier) -> "Actor":
        return cls("instance", str(instance_identifier))

    @classmethod
    def job(cls, task_name: str) -> "Actor":
        return cls("job", task_name)


@dataclass(frozen=True)
class Frame:
    """What the door knows: a fixed actor, or the request whose user is read when an event is recorded."""

    actor: Actor | None = None
    request: object | None = None


_frame: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("audit_frame", default=None)


def os_user() -> str:
    """The effective user's name from the password database (never $USER or $LOGNAME, which anyone can set), or
    its uid when it has no entry (a container user)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def current_actor() -> Actor:
    frame = _frame.get()
    if frame is None:
        return Actor("cli", os_user())
    if frame.actor is not None:
        return frame.actor
    user = getattr(frame.request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor("user", user.get_username(), user.pk)
    return Actor("anonymous", "anonymous")


def current_request_details() -> tuple[str, str | None]:
    """(request id, client address) of the request being served, or ("", None) outside one."""
    frame = _frame.get()
    if frame is None or frame.request is None:
        return "", None
    request_id = request_id_var.get()
    return ("" if request_id == "-" else request_id), _ip_or_none(client_ip(frame.request))


def _ip_or_none(text: str) -> str | None:
    """The address as the column stores it; anything else (a unix socket's "unix:", a zone suffix) is not kept."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@contextmanager
def acting(*, actor: Actor | None = None, request=None):
    """Every event recorded inside is attributed to `actor` (or the request's user)."""
    token = _frame.set(Frame(actor=actor, request=request))
    try:
        yield
    finally:
        _frame.reset(token)


class AuditRequestMiddleware:
    """Binds the request to the audit frame, so services called by any view know who acts and from where."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with acting(request=request):
            return self.get_response(request)


_task_frames: dict[str, contextvars.Token] = {}


@task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    _task_frames[task_id] = _frame.set(Frame(actor=Actor.job(task.name)))


@task_postrun.connect
def _task_finished(task_id=None, **kwargs):
    token = _task_frames.pop(task_id, None)
    if token is not None:
        _frame.reset(token)
