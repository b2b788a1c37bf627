"""`POST /graphql`: the GitLab-facing GraphQL schema (graphql-core), with resolvers as thin doors onto services.

Every request is rate limited per client address before its body is read, and bounded in size, tokens, shape and
depth before it is executed (`graphql_limits`); documents that validated are cached (GitLab sends a few texts).
The catalog views (`availableServices`, `catalog`) never change while the process runs, so their completed
values are memoized per document and field (`StaticValue`, `_MemoizingExecutor`): a sync only completes
what depends on the request.
"""

import functools
import logging
from dataclasses import dataclass

import orjson
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from graphql import GraphQLError, build_schema, execute
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental

from config.limits import (
    Refusal,
    json_body_admitted,
    json_has_nul,
    license_key_rate_count,
    rate_limit_activation,
)
from config.unavailable import RETRY_AFTER_SECONDS, RETRY_LATER, TRANSIENT_FAILURES
from issuer.api.graphql_limits import MAX_BODY_BYTES, document_prepared
from issuer.api.http import header, instance_headers
from issuer.keys.services import SigningKeyRefused
from issuer.sync_state.store import sync_state_counted
from issuer.tokens.services import InstanceIdMismatch, service_access_token_sync
from subscriptions.selectors import subscriptions_future
from subscriptions.services import ActivationError, instance_activate
from unit_primitives.catalog import available_services, catalog_document, iso_utc

logger = logging.getLogger(__name__)
# What a caller is told to retry: the database or cache away, or no usable signing key (an operator's matter).
TEMPORARILY_UNABLE = (*TRANSIENT_FAILURES, SigningKeyRefused)

SCHEMA = build_schema(
    """
    "Any JSON value."
    scalar JSON

    type Query {
      cloudConnectorAccess(licenseKey: String!, gitlabVersion: String!): CloudConnectorAccess
    }

    type Mutation {
      cloudActivationActivate(input: CloudActivationActivateInput!): CloudActivationActivatePayload
    }

    type CloudConnectorAccess {
      "Null when the subscription has ended or the instance is suspended: GitLab then drops its tokens."
      serviceToken: ServiceToken
      availableServices: [AvailableService!]!
      catalog: JSON
    }

    type ServiceToken {
      token: String!
      expiresAt: String!
    }

    type AvailableService {
      name: String!
      serviceStartTime: String
      bundledWith: [String!]!
    }

    input CloudActivationActivateInput {
      gitlabVersion: String!
      activationCode: String!
      automated: Boolean!
      instanceIdentifier: String!
      hostname: String!
      "GitLab 18.x and newer: the instance's anonymous unique id (at most 64 printable characters)."
      uniqueInstanceId: String
    }

    type CloudActivationActivatePayload {
      licenseKey: String
      "The customer's subscriptions that start after today."
      futureSubscriptions: [FutureSubscription!]!
      "True when this activation bound a subscription that no instance had activated before."
      newSubscription: Boolean!
      errors: [String!]!
    }

    type FutureSubscription {
      cloudLicenseEnabled: Boolean!
      offlineCloudLicenseEnabled: Boolean!
      plan: String!
      company: String!
      email: String!
      name: String!
      startsAt: String!
      expiresAt: String!
      usersInLicenseCount: Int!
    }
    """
)


class StaticValue:
    """A resolver result that is the same for every request (the catalog views)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


@dataclass(frozen=True)
class RequestContext:
    request: object
    memo: dict  # the document's memo of completed static values; lives and dies with the cached document


class _MemoizingExecutor(ExecutorThrowingOnIncremental):
    def complete_value(self, return_type, field_details_list, info, path, result, position_context):
        if not isinstance(result, StaticValue):
            return super().complete_value(return_type, field_details_list, info, path, result, position_context)
        memo = info.context.memo
        key = (return_type, tuple(id(details.node) for details in field_details_list))
        if key not in memo:
            memo[key] = super().complete_value(
                return_type, field_details_list, info, path, result.value, position_context
            )
        return memo[key]


class RateLimitedError(Exception):
    def __init__(self, limited: Refusal):
        super().__init__(limited.message)
        self.limited = limited


def _raise_if_limited(limited: Refusal | None) -> None:
    if limited is not None:
        raise RateLimitedError(limited)


class Query:
    @staticmethod
    def cloudConnectorAccess(info, licenseKey: str, gitlabVersion: str):  # noqa: N802, N803 (GraphQL names)
        counting = license_key_rate_count(licenseKey)
        state, count = sync_state_counted(licenseKey, counting)
        _raise_if_limited(counting and counting.refusal(count))
        if state is None:
            raise GraphQLError("The license key is not valid (unknown, replaced or released).")
        request = info.context.request
        try:
            result = service_access_token_sync(
                state, gitlab_version=gitlabVersion or header(request, "X-Gitlab-Version"), **instance_headers(request)
            )
        except InstanceIdMismatch as error:
            raise GraphQLError(str(error)) from None
        service_token = (
            {"token": result.token, "expiresAt": iso_utc(result.expires_at)} if result.token is not None else None
        )
        services_view, catalog_view = _static_catalog_views()
        return {"serviceToken": service_token, "availableServices": services_view, "catalog": catalog_view}


@functools.cache
def _static_catalog_views() -> tuple[StaticValue, StaticValue]:
    return StaticValue(available_services()), StaticValue(catalog_document())


def _camel_case(row: dict) -> dict:
    return {_camel(key): value for key, value in row.items()}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


class Mutation:
    @staticmethod
    def cloudActivationActivate(info, input: dict):  # noqa: N802, A002 (GraphQL names)
        _raise_if_limited(rate_limit_activation(info.context.request))
        try:
            activation = instance_activate(
                activation_code=input["activationCode"],
                instance_identifier=input["instanceIdentifier"],
                hostname=input["hostname"],
                gitlab_version=input["gitlabVersion"],
                unique_instance_id=input.get("uniqueInstanceId") or "",
            )
        except ActivationError as error:
            return {"licenseKey": None, "futureSubscriptions": [], "newSubscription": False, "errors": [str(error)]}
        future = subscriptions_future(activation.instance.subscription.customer_id)
        return {
            "licenseKey": activation.license_key,
            "futureSubscriptions": [_camel_case(row) for row in future],
            "newSubscription": activation.new_subscription,
            "errors": [],
        }


class Root(Query, Mutation):
    """graphql-core resolves root fields as methods of the root value."""


def _json(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """orjson: the sync answer carries the whole catalog (~20 kB), and the standard encoder was a tenth of it."""
    return HttpResponse(orjson.dumps(body), content_type="application/json", status=status, headers=headers)


def _errors(errors, status=200, headers: dict | None = None):
    return _json({"errors": [error.formatted for error in errors]}, status=status, headers=headers)


def _arguments_without_nul(next_, root, info, **arguments):
    """Execution middleware: string arguments, whether variables or literals in the query text, never hold NUL (no
    database stores it)."""
    if json_has_nul(arguments):
        raise GraphQLError("Strings must not contain NUL characters.")
    return next_(root, info, **arguments)


def _refused(refusal: Refusal) -> HttpResponse:
    return _errors([GraphQLError(refusal.message)], status=refusal.status, headers=refusal.headers)


@csrf_exempt
@require_POST
def graphql_view(request):
    payload, refusal = json_body_admitted(request, MAX_BODY_BYTES)
    if refusal is not None:
        return _refused(refusal)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _errors([GraphQLError("The body must be a JSON object with a `query` string.")], status=400)
    variables = payload.get("variables")
    variables = {} if variables is None else variables
    if not isinstance(variables, dict):
        return _errors([GraphQLError("`variables` must be a JSON object.")], status=400)
    if json_has_nul(variables):
        return _errors([GraphQLError("Strings must not contain NUL characters.")], status=400)
    document, errors, memo = document_prepared(payload["query"], SCHEMA)
    if errors:
        return _errors(errors, status=400)
    operation = payload.get("operationName")
    result = execute(
        SCHEMA,
        document,
        root_value=Root,
        context_value=RequestContext(request=request, memo=memo),
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) else None,
        executor_class=_MemoizingExecutor,
        middleware=[_arguments_without_nul],
    )
    failures = [error.original_error for error in result.errors or ()]
    limited = next((failure.limited for failure in failures if isinstance(failure, RateLimitedError)), None)
    if limited is not None:
        return _refused(limited)
    transient = next((failure for failure in failures if isinstance(failure, TEMPORARILY_UNABLE)), None)
    if transient is not None:  # the caller hears "retry"; the operator reads why
        logger.warning("GraphQL request answered 503", extra={"error": repr(transient)})
        return _errors([GraphQLError(RETRY_LATER)], status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    body = {"data": result.data}
    if result.errors:
        for error in result.errors:
            if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
                logger.error("GraphQL resolver failed", exc_info=error.original_error)
        body["errors"] = [_public_error(error) for error in result.errors]
    return _json(body)


def _public_error(error: GraphQLError) -> dict:
    """Business errors say why; an unexpected failure says only that, never its internals."""
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        return {"message": "Internal error.", "path": error.path}
    return error.formatted
