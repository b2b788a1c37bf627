"""`POST /graphql`: the GitLab-facing GraphQL schema (graphql-core), with resolvers as thin doors onto services.

Every request is rate limited per client address before its body is read, and bounded in size, tokens, shape and
depth before it is executed (`graphql_limits`); documents that validated are cached (GitLab sends a few texts).
The catalog views (`availableServices`, `catalog`) never change while the process runs, so their completed
values are memoized per document and field (`StaticValue`, `_MemoizingExecutor`): a sync only completes
what depends on the request.

`subscription(licenseKey:) { gitlabCreditsUsage { … } }` is GitLab's usage read-back (PROTOCOL §9.3): the license
key is the credential, looked up as a sync looks it up, on a per-license-key counter of its own
(`license_key_rate_count(readback=True)`); the figures come from `credits.readback`, each computed only when the
document selects it, credits written as GitLab's Float.
"""

import datetime as dt
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
    RateCount,
    Refusal,
    address_rate_count,
    json_body_admitted,
    json_has_nul,
    json_text_may_hold_nul,
    license_key_rate_count,
    rate_limit_activation,
)
from config.unavailable import RETRY_AFTER_SECONDS, RETRY_LATER, TRANSIENT_FAILURES
from credits.readback import MAX_USER_IDS, ReadbackError, UsageReadback, flow_title, usage_period
from issuer.api.graphql_limits import (
    MAX_BODY_BYTES,
    NUL_IN_STRINGS,
    READBACK_ROOT,
    document_cached,
    document_prepared,
    root_field,
)
from issuer.api.http import header, instance_headers
from issuer.keys.services import SigningKeyRefused
from issuer.sync_state.store import sync_state_counted, sync_state_settle
from issuer.tokens.services import InstanceIdMismatch, service_access_token_sync
from subscriptions.selectors import subscriptions_future
from subscriptions.services import ActivationError, instance_activate
from unit_primitives.catalog import available_services, catalog_document, iso_utc

logger = logging.getLogger(__name__)
# What a caller is told to retry: the database or cache away, or no usable signing key (an operator's matter).
TEMPORARILY_UNABLE = (*TRANSIENT_FAILURES, SigningKeyRefused)

SCHEMA = build_schema(
    """
    schema {
      query: Query
      mutation: Mutation
    }

    "Any JSON value."
    scalar JSON

    "A date, ISO 8601 (YYYY-MM-DD)."
    scalar ISO8601Date

    "A moment, ISO 8601 in UTC with a Z."
    scalar ISO8601DateTime

    type Query {
      cloudConnectorAccess(licenseKey: String!, gitlabVersion: String!): CloudConnectorAccess
      "GitLab's usage read-back: the subscription the license key is bound to (self-managed: no namespaceId)."
      subscription(namespaceId: ID, licenseKey: String): Subscription
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

    type Subscription {
      "The period's usage (UTC days, both ends included; by default the current month)."
      gitlabCreditsUsage(
        instanceId: String, startDate: ISO8601Date, endDate: ISO8601Date, flowTypes: [String!]
      ): GitlabCreditsUsage
    }

    type GitlabCreditsUsage {
      startDate: ISO8601Date!
      endDate: ISO8601Date!
      enabled: Boolean!
      isOutdatedClient(gitlabVersion: String): Boolean!
      lastEventTransactionAt: ISO8601DateTime
      lastUpdated: ISO8601DateTime!
      purchaseCreditsPath: String
      overageTermsAccepted: Boolean!
      canAcceptOverageTerms: Boolean!
      dapPromoEnabled: Boolean!
      usageDashboardPath: String
      creditsUsed: Float!
      dailyAverage: Float!
      dailyUsage(sort: DailyUsageSort, limit: Int): [GitlabCreditsDailyUsage!]!
      oneTimeCredits: GitlabCreditsOneTimeCredits!
      monthlyWaiver: GitlabCreditsMonthlyWaiver!
      monthlyCommitment: GitlabCreditsMonthlyCommitment!
      overage: GitlabCreditsOverage!
      paidTierTrial: GitlabCreditsPaidTierTrial!
      usersUsage: GitlabCreditsUsersUsage!
      products: [GitlabCreditsProduct!]!
      "Not kept: the ledger does not record sessions (GitLab's client backs off on this field's error)."
      sessionCreditsUsed(workflowIds: [ID!]!): [GitlabCreditsSessionCredits!]
    }

    enum DailyUsageSort {
      DATE_ASC
      DATE_DESC
      CREDITS_USED_ASC
      CREDITS_USED_DESC
    }

    enum GitlabCreditsConsumerSort {
      TOTAL_CREDITS_USED_ASC
      TOTAL_CREDITS_USED_DESC
    }

    type GitlabCreditsDailyUsage {
      date: ISO8601Date!
      creditsUsed: Float!
    }

    type GitlabCreditsOneTimeCredits {
      creditsUsed: Float!
      totalCredits: Float!
      totalCreditsRemaining: Float!
    }

    type GitlabCreditsMonthlyWaiver {
      creditsUsed: Float!
      totalCredits: Float!
      dailyUsage: [GitlabCreditsDailyUsage!]!
    }

    type GitlabCreditsMonthlyCommitment {
      totalCredits: Float!
      creditsUsed: Float!
      dailyUsage: [GitlabCreditsDailyUsage!]!
    }

    type GitlabCreditsOverage {
      isAllowed: Boolean!
      creditsUsed: Float!
      dailyUsage: [GitlabCreditsDailyUsage!]!
    }

    type GitlabCreditsPaidTierTrial {
      isActive: Boolean!
      dailyUsage: [GitlabCreditsDailyUsage!]!
    }

    type GitlabCreditsUsersUsage {
      totalActiveUsers: Int!
      totalUsersUsingCredits: Int!
      totalUsersUsingMonthlyCommitment: Int!
      totalUsersUsingOverage: Int!
      creditsUsed: Float!
      dailyUsage: [GitlabCreditsDailyUsage!]!
      users(userIds: [Int!]!): [GitlabCreditsUser!]!
      consumers(
        sort: GitlabCreditsConsumerSort, first: Int, last: Int, after: String, before: String
      ): GitlabCreditsConsumerConnection!
    }

    type GitlabCreditsUser {
      userId: Int!
      totalCredits: Float!
      creditsUsed: Float!
      totalCreditsUsed: Float!
      monthlyCommitmentCreditsUsed: Float!
      oneTimeCreditsUsed: Float!
      monthlyWaiverCreditsUsed: Float!
      overageCreditsUsed: Float!
      paidTierTrialCreditsUsed: Float!
      dailyUsage(flowTypes: [String]): [GitlabCreditsDailyUsage!]!
      usedFlowTypes: [GitlabCreditsFlowType!]!
      events(
        first: Int, last: Int, before: String, after: String, flowTypes: [String], page: Int
      ): GitlabCreditsEventConnection!
    }

    type GitlabCreditsConsumer {
      userId: Int!
      totalCredits: Float!
      creditsUsed: Float!
      totalCreditsUsed: Float!
      monthlyCommitmentCreditsUsed: Float!
      oneTimeCreditsUsed: Float!
      monthlyWaiverCreditsUsed: Float!
      overageCreditsUsed: Float!
      paidTierTrialCreditsUsed: Float!
      entityType: String!
    }

    type GitlabCreditsConsumerConnection {
      nodes: [GitlabCreditsConsumer!]!
      pageInfo: PageInfo!
    }

    type GitlabCreditsEvent {
      timestamp: ISO8601DateTime!
      eventType: String!
      flowType: String!
      projectId: Int
      namespaceId: Int
      "Null when the catalog has no price for the event (stored and flagged, never free)."
      creditsUsed: Float
      sessionId: String
      showSessionLink: Boolean!
    }

    type GitlabCreditsEventConnection {
      nodes: [GitlabCreditsEvent!]!
      pageInfo: PageInfo!
    }

    type PageInfo {
      hasNextPage: Boolean!
      hasPreviousPage: Boolean!
      startCursor: String
      endCursor: String
    }

    type GitlabCreditsFlowType {
      id: String!
      title: String!
    }

    type GitlabCreditsProduct {
      id: String!
      title: String!
      creditsUsed: Float!
      flowTypes: [GitlabCreditsFlowType!]!
    }

    type GitlabCreditsSessionCredits {
      workflowId: ID!
      creditsUsed: Float
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


@dataclass
class RequestContext:
    request: object
    memo: dict  # the document's memo of completed static values; lives and dies with the cached document
    # The per-address count, left to the resolver that reads the cache anyway (one round trip for both); None once
    # counted.
    address: RateCount | None = None

    def address_to_count(self) -> list[RateCount]:
        address, self.address = self.address, None
        return [address] if address is not None else []


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
        state = _state_counted(info, licenseKey, license_key_rate_count(licenseKey))
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

    @staticmethod
    def subscription(info, licenseKey: str | None = None, namespaceId: str | None = None):  # noqa: N803 (GraphQL names)
        """GitLab's usage read-back: the license key authenticates as in a sync, on its own per-key counter."""
        if not licenseKey:
            raise GraphQLError(NO_LICENSE_KEY)
        state = _state_counted(info, licenseKey, license_key_rate_count(licenseKey, readback=True))
        sync_state_settle(state)
        return {"gitlabCreditsUsage": functools.partial(_credits_usage, state.instance.subscription)}


def _state_counted(info, license_key: str, per_key: RateCount | None):
    """The license key's sync state, counted against the address limit (when the view left it to this resolver)
    and the key's, in one round trip with the cached state's read."""
    counters = [*info.context.address_to_count(), *([per_key] if per_key is not None else [])]
    state, counts = sync_state_counted(license_key, counters)
    for counter, count in zip(counters, counts, strict=True):
        _raise_if_limited(counter.refusal(count))
    if state is None:
        raise GraphQLError(INVALID_LICENSE_KEY)
    return state


INVALID_LICENSE_KEY = "The license key is not valid (unknown, replaced or released)."
NO_LICENSE_KEY = "A licenseKey is required: this issuer serves self-managed instances, not GitLab.com namespaces."
# GitLab's client treats this exact message as the field switched off, and backs off (SESSION_CREDITS_DISABLED_MESSAGE).
SESSION_CREDITS_DISABLED = "sessionCreditsUsed is temporarily disabled"


def _credits_usage(subscription, info, instanceId=None, startDate=None, endDate=None, flowTypes=None):  # noqa: N803
    """The usage view: every value that needs the ledger is a function, called only when the document selects it
    (graphql-core's default resolver calls a callable value with the field's arguments)."""
    now = dt.datetime.now(dt.UTC)
    readback = UsageReadback(subscription, usage_period(startDate, endDate, now.date()), flowTypes, now.date())
    usage = readback.credits_used
    return {
        "startDate": readback.period.start.isoformat(),
        "endDate": readback.period.end.isoformat(),
        "enabled": True,
        "isOutdatedClient": lambda _info, gitlabVersion=None: False,  # noqa: N803
        "lastEventTransactionAt": lambda _info: _iso(readback.last_event_at()),
        "lastUpdated": iso_utc(now),
        "purchaseCreditsPath": None,
        "overageTermsAccepted": lambda _info: readback.overage_allowed(),
        "canAcceptOverageTerms": False,  # overage is allowed in the back office, with a reason, not from GitLab
        "dapPromoEnabled": False,
        "usageDashboardPath": None,
        "creditsUsed": lambda _info: float(usage()),
        "dailyAverage": lambda _info: float(readback.daily_average()),
        "dailyUsage": lambda _info, sort=None, limit=None: _days(readback.daily_usage(sort=sort, limit=limit)),
        "oneTimeCredits": lambda _info: _pool(readback.pools.one_time),
        "monthlyWaiver": lambda _info: _pool(readback.pools.waiver),
        "monthlyCommitment": lambda _info: _pool(readback.pools.commitment),
        "overage": lambda _info: {**_pool(readback.pools.overage), "isAllowed": readback.pools.overage_allowed},
        "paidTierTrial": {"isActive": False, "dailyUsage": []},
        "usersUsage": lambda _info: _users_usage(readback),
        "products": lambda _info: [
            {
                "id": product.event_type,
                "title": flow_title(product.event_type),
                "creditsUsed": float(product.credits_used),
                "flowTypes": _flow_types(product.flows),
            }
            for product in readback.products()
        ],
        "sessionCreditsUsed": _session_credits,
    }


def _session_credits(_info, workflowIds=()):  # noqa: N803
    raise GraphQLError(SESSION_CREDITS_DISABLED)


def _iso(moment: dt.datetime | None) -> str | None:
    return iso_utc(moment.astimezone(dt.UTC)) if moment is not None else None


def _days(rows) -> list[dict]:
    return [{"date": day.isoformat(), "creditsUsed": float(spent)} for day, spent in rows]


def _pool(pool) -> dict:
    return {
        "creditsUsed": float(pool.used),
        "totalCredits": float(pool.total),
        "totalCreditsRemaining": float(pool.remaining),
        "dailyUsage": _days(pool.daily),
    }


def _flow_types(flows) -> list[dict]:
    return [{"id": flow, "title": flow_title(flow)} for flow in flows]


def _users_usage(readback: UsageReadback) -> dict:
    return {
        "totalActiveUsers": lambda _info: readback.users_count(),
        "totalUsersUsingCredits": lambda _info: readback.users_count("included"),
        "totalUsersUsingMonthlyCommitment": lambda _info: readback.users_count("commitment"),
        "totalUsersUsingOverage": lambda _info: readback.users_count("overage"),
        "creditsUsed": lambda _info: float(readback.users_credits_used()),
        "dailyUsage": lambda _info: _days(readback.daily_usage(users_only=True)),
        "users": lambda _info, userIds: _users(readback, userIds),
        "consumers": lambda _info, sort=None, **page: _consumers(readback, sort, page),
    }


def _user_figures(user) -> dict:
    return {
        "totalCredits": float(user.total_credits),
        "creditsUsed": float(user.share("included")),
        "totalCreditsUsed": float(user.used),
        "monthlyCommitmentCreditsUsed": float(user.share("commitment")),
        "oneTimeCreditsUsed": float(user.share("one_time")),
        "monthlyWaiverCreditsUsed": float(user.share("waiver")),
        "overageCreditsUsed": float(user.share("overage")),
        "paidTierTrialCreditsUsed": 0.0,
    }


def _users(readback: UsageReadback, user_ids: list[int]) -> list[dict]:
    """One entry per id asked for (zeros for a user without usage), matched on the events' user key."""
    if len(user_ids) > MAX_USER_IDS:
        raise GraphQLError(f"At most {MAX_USER_IDS} userIds a query.")
    return [_user(readback, user_id) for user_id in dict.fromkeys(user_ids)]


def _user(readback: UsageReadback, user_id: int) -> dict:
    key = str(user_id)

    def events(_info, flowTypes=None, first=None, last=None, before=None, after=None, page=None):  # noqa: N803
        found = readback.user_events(
            key, flow_types=flowTypes, first=first, last=last, before=before, after=after, page=page
        )
        nodes = [
            {
                "timestamp": _iso(row.occurred_at),
                "eventType": row.event_type,
                "flowType": flow_title(row.flow),
                "projectId": None,  # not in the ledger: the billing event's project and namespace are not kept
                "namespaceId": None,
                "creditsUsed": float(row.credits) if row.credits is not None else None,
                "sessionId": None,
                "showSessionLink": False,
            }
            for row in found.rows
        ]
        return {"nodes": nodes, "pageInfo": _page_info(found)}

    return {
        "userId": user_id,
        **_user_figures(readback.user(key)),
        "dailyUsage": lambda _info, flowTypes=None: _days(readback.daily_usage(flow_types=flowTypes, user_key=key)),  # noqa: N803
        "usedFlowTypes": lambda _info: _flow_types(readback.user_flow_types(key)),
        "events": events,
    }


def _consumers(readback: UsageReadback, sort: str | None, page: dict) -> dict:
    found = readback.consumers(ascending=sort == "TOTAL_CREDITS_USED_ASC", **page)
    nodes = [{"userId": user.user_id, **_user_figures(user), "entityType": "USER"} for user in found.rows]
    return {"nodes": nodes, "pageInfo": _page_info(found)}


def _page_info(page) -> dict:
    return {
        "hasNextPage": page.has_next,
        "hasPreviousPage": page.has_previous,
        "startCursor": page.start_cursor,
        "endCursor": page.end_cursor,
    }


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


def _readback_refusals_said(next_, root, info, **arguments):
    """Execution middleware of the usage read-back's documents: a read-back the ledger cannot answer (a bad period
    or cursor) says why. Other documents run without middleware (graphql-core then calls each resolver directly:
    3% of a fleet sync's instructions went to wrapping every field); NUL is refused before execution, in the
    document (a validation rule) and in the variables (`_request_shape_refusal`)."""
    try:
        return next_(root, info, **arguments)
    except ReadbackError as error:
        raise GraphQLError(str(error)) from None


def _refused(refusal: Refusal) -> HttpResponse:
    return _errors([GraphQLError(refusal.message)], status=refusal.status, headers=refusal.headers)


# Root fields whose resolver reads the cache anyway: with a cached document the view leaves the address count to
# them (`RequestContext.address`), one round trip for the address, the license key and the cached state.
COUNTED_WITH_THE_STATE = frozenset({"cloudConnectorAccess", "subscription"})


@csrf_exempt
@require_POST
def graphql_view(request):
    """Bounded before anything is parsed (the declared size); the address is counted before any work that costs
    more than its round trip: at once for an unknown document (parsing and validating it is that work), in the
    resolver's own round trip for the sync's cached document, and before any refusal is answered."""
    address = address_rate_count(request)
    payload, refusal = json_body_admitted(request, MAX_BODY_BYTES, count_address=False)
    if refusal is not None:
        return _refused(_address_over(address) or refusal)
    refusal = _request_shape_refusal(payload, request.body)
    if refusal is not None:
        return _refused(_address_over(address) or refusal)
    operation = payload.get("operationName")
    operation = operation if isinstance(operation, str) else None
    cached = document_cached(payload["query"])
    root = None if cached is None else root_field(cached[0], operation)
    if root not in COUNTED_WITH_THE_STATE:
        limited = _address_over(address)
        if limited is not None:
            return _refused(limited)
        address = None
    document, errors, memo = cached or document_prepared(payload["query"], SCHEMA)
    if errors:
        return _errors(errors, status=400)
    if cached is None:
        root = root_field(document, operation)
    context = RequestContext(request=request, memo=memo, address=address)
    result = execute(
        SCHEMA,
        document,
        root_value=Root,
        context_value=context,
        variable_values=payload["variables"],
        operation_name=operation,
        executor_class=_MemoizingExecutor,
        middleware=[_readback_refusals_said] if root == READBACK_ROOT else None,
    )
    limited = _address_over(context.address)  # left to a resolver that never ran (bad variables): counted now
    if limited is not None:
        return _refused(limited)
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


def _address_over(address: RateCount | None) -> Refusal | None:
    """The address counted in a round trip of its own; its refusal when over the limit."""
    return None if address is None else address.refusal(address.count_alone())


def _request_shape_refusal(payload, text: bytes) -> Refusal | None:
    """A GraphQL request is a JSON object with a `query` string and optional `variables` (normalised to a dict)
    without NUL (`text`, the body it was decoded from, says when none can be there)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return Refusal(400, "The body must be a JSON object with a `query` string.")
    variables = payload.get("variables")
    payload["variables"] = {} if variables is None else variables
    if not isinstance(payload["variables"], dict):
        return Refusal(400, "`variables` must be a JSON object.")
    if json_text_may_hold_nul(text) and json_has_nul(payload["variables"]):
        return Refusal(400, NUL_IN_STRINGS)
    return None


def _public_error(error: GraphQLError) -> dict:
    """Business errors say why; an unexpected failure says only that, never its internals."""
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        return {"message": "Internal error.", "path": error.path}
    return error.formatted
