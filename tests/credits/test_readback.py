"""GitLab's usage read-back (issue 25, PROTOCOL §9.3): `subscription(licenseKey:) { gitlabCreditsUsage { … } }` on
/graphql. Each test sends one of GitLab's own query texts, verbatim, and checks the shapes and the figures against
a ledger built with the credits services: one March 2024 of a Premium subscription with ten seats (120 included
credits), a waiver of 5, a commitment of 10, 3 one-time credits and overage allowed, and 148 credits of usage."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from credits.collector import BillableEvent
from credits.services import IngestReport, credit_grant_create, credit_overage_set, usage_events_record
from issuer.api.graphql_limits import MAX_DEPTH, READBACK_MAX_DEPTH
from subscriptions.services import instance_activate
from tests.factories import SubscriptionFactory
from tests.helpers import SYNC_QUERY

pytestmark = pytest.mark.django_db
D = Decimal
MARCH = {"startDate": "2024-03-01", "endDate": "2024-03-31"}
RECEIVED = dt.datetime(2024, 3, 21, 12, 30, tzinfo=dt.UTC)

GET_METADATA_QUERY = """\
query subscriptionUsageMetadata(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $gitlabVersion: String!,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      startDate
      endDate
      enabled
      isOutdatedClient(gitlabVersion: $gitlabVersion)
      lastEventTransactionAt
      overageTermsAccepted
      canAcceptOverageTerms
      dapPromoEnabled
      usageDashboardPath
    }
  }
}
"""

GET_PAID_TIER_TRIAL_QUERY = """\
query subscriptionUsagePaidTierTrial(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      paidTierTrial {
        isActive
        dailyUsage {
          date
          creditsUsed
        }
      }
    }
  }
}
"""

GET_SUBSCRIPTION_USAGE_QUERY = """\
query subscriptionUsage(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $sort: DailyUsageSort,
  $limit: Int,
  $flowTypes: [String!]
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate, flowTypes: $flowTypes) {
      creditsUsed
      dailyAverage
      dailyUsage(sort: $sort, limit: $limit) {
        date
        creditsUsed
      }
    }
  }
}
"""

GET_SESSION_CREDITS_QUERY = """\
query sessionCredits(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $workflowIds: [ID!]!
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      sessionCreditsUsed(workflowIds: $workflowIds) {
        workflowId
        creditsUsed
      }
    }
  }
}
"""

GET_MONTHLY_WAIVER_QUERY = """\
query subscriptionUsageMonthlyWaiver(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      monthlyWaiver {
        creditsUsed
        totalCredits
        dailyUsage {
          date
          creditsUsed
        }
      }
    }
  }
}
"""

GET_MONTHLY_COMMITMENT_QUERY = """\
query subscriptionUsageMonthlyCommitment(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      monthlyCommitment {
        totalCredits
        creditsUsed
        dailyUsage {
          date
          creditsUsed
        }
      }
    }
  }
}
"""

GET_OVERAGE_QUERY = """\
query subscriptionUsageOverage(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      overage {
        isAllowed
        creditsUsed
        dailyUsage {
          date
          creditsUsed
        }
      }
    }
  }
}
"""

GET_USER_EVENTS_QUERY = """\
query subscriptionUsageUserEvents(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $userIds: [Int!]!,
  $flowTypes: [String],
  $first: Int,
  $last: Int,
  $after: String,
  $before: String
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      usersUsage {
        users(userIds: $userIds) {
          events(first: $first, last: $last, before: $before, after: $after, flowTypes: $flowTypes) {
            nodes {
              timestamp
              eventType
              flowType
              projectId
              namespaceId
              creditsUsed
              sessionId
              showSessionLink
            }
            pageInfo {
              hasNextPage
              hasPreviousPage
              startCursor
              endCursor
            }
          }
        }
      }
    }
  }
}
"""

GET_USED_FLOW_TYPES_QUERY = """\
query subscriptionUsageUsedFlowTypes(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $userIds: [Int!]!
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      usersUsage {
        users(userIds: $userIds) {
          usedFlowTypes {
            id
            title
          }
        }
      }
    }
  }
}
"""

GET_USER_DAILY_USAGE_QUERY = """\
query subscriptionUsageDailyUsageForUserId(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $userIds: [Int!]!,
  $flowTypes: [String]
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      usersUsage {
        users(userIds: $userIds) {
          dailyUsage(flowTypes: $flowTypes) {
            date
            creditsUsed
          }
        }
      }
    }
  }
}
"""

GET_USERS_USAGE_QUERY = """\
query subscriptionUsageForUserIds(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $userIds: [Int!]!,
  $flowTypes: [String!]
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate, flowTypes: $flowTypes) {
      usersUsage {
        users(userIds: $userIds) {
          userId
          totalCredits
          creditsUsed
          totalCreditsUsed
          monthlyCommitmentCreditsUsed
          monthlyWaiverCreditsUsed
          overageCreditsUsed
          paidTierTrialCreditsUsed
        }
      }
    }
  }
}
"""

GET_CONSUMERS_QUERY = """\
query subscriptionUsageForConsumers(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $sort: GitlabCreditsConsumerSort,
  $first: Int,
  $last: Int,
  $after: String,
  $before: String,
  $flowTypes: [String!]
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate, flowTypes: $flowTypes) {
      usersUsage {
        consumers(
          sort: $sort
          first: $first
          last: $last
          after: $after
          before: $before
        ) {
          nodes {
            userId
            totalCredits
            creditsUsed
            totalCreditsUsed
            monthlyCommitmentCreditsUsed
            monthlyWaiverCreditsUsed
            overageCreditsUsed
            paidTierTrialCreditsUsed
            entityType
          }
          pageInfo {
            hasNextPage
            hasPreviousPage
            startCursor
            endCursor
          }
        }
      }
    }
  }
}
"""

GET_USERS_USAGE_STATS_QUERY = """\
query subscriptionUsageUsersStats(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date,
  $flowTypes: [String!]
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate, flowTypes: $flowTypes) {
      usersUsage {
        totalActiveUsers
        totalUsersUsingCredits
        totalUsersUsingMonthlyCommitment
        totalUsersUsingOverage
        creditsUsed
        dailyUsage {
          date
          creditsUsed
        }
      }
    }
  }
}
"""

GET_PRODUCTS_QUERY = """\
query subscriptionUsageProducts(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $startDate: ISO8601Date,
  $endDate: ISO8601Date
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId, startDate: $startDate, endDate: $endDate) {
      products {
        id
        title
        creditsUsed
        flowTypes {
          id
          title
        }
      }
    }
  }
}
"""

# The older generation's metadata query (gitlab-org/gitlab as mirrored at pavankalisetti009/gitlab@01ad588c): no
# dates (the current month), and purchaseCreditsPath.
GET_METADATA_QUERY_WITHOUT_DATES = """\
query subscriptionUsageMetadata(
  $instanceId: String,
  $namespaceId: ID,
  $licenseKey: String,
  $gitlabVersion: String!,
) {
  subscription(namespaceId: $namespaceId, licenseKey: $licenseKey) {
    gitlabCreditsUsage(instanceId: $instanceId) {
      startDate
      endDate
      enabled
      isOutdatedClient(gitlabVersion: $gitlabVersion)
      lastEventTransactionAt
      purchaseCreditsPath
    }
  }
}
"""


def event(instance, day, *, user, event_type, quantity, feature=""):
    return BillableEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        unit_of_measure="request",
        quantity=D(quantity),
        occurred_at=dt.datetime(2024, 3, day, 9, 0, tzinfo=dt.UTC),
        instance_id=uuid.UUID(str(instance.instance_identifier)),
        realm="SM",
        user_key=user,
        feature=feature,
        correlation_id="",
    )


@pytest.fixture
def ledger():
    """(license key, instance) of March 2024: 138 credits of pools, 148 of priced usage, 10 of overage."""
    subscription = SubscriptionFactory(
        license_type="premium", seats=10, starts_on=dt.date(2020, 1, 1), expires_on=dt.date(2099, 1, 1)
    )
    activation = instance_activate(activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4()))
    instance = activation.instance
    month = dt.date(2024, 3, 1)
    credit_grant_create(subscription=subscription, kind="waiver", amount=D("5"), month=month, reason="goodwill")
    credit_grant_create(subscription=subscription, kind="commitment", amount=D("10"), month=month, reason="bought")
    credit_grant_create(
        subscription=subscription,
        kind="one_time",
        amount=D("3"),
        starts_on=month,
        expires_on=dt.date(2024, 6, 1),
        reason="bought once",
    )
    credit_overage_set(subscription, True, reason="the customer accepted the usage billing terms")
    events = [
        # 1,000 completions × 0.02 = 20 credits, drawn from the included credits
        event(instance, 3, user="7", event_type="code_completions", quantity=1000, feature="code_suggestions"),
        # 200 agentic calls × 0.5 = 100: the included credits are spent (120)
        event(
            instance,
            5,
            user="7",
            event_type="duo_agent_platform_workflow_completion",
            quantity=200,
            feature="software_development",
        ),
        # 15: the waiver (5), then the commitment (10)
        event(
            instance,
            10,
            user="8",
            event_type="duo_agent_platform_workflow_completion",
            quantity=30,
            feature="software_development",
        ),
        # 10: the one-time credits (3), then 7 of overage
        event(instance, 12, user="8", event_type="code_generations", quantity=500),
        # 3 of overage, by a user GitLab cannot name (a global user id)
        event(instance, 20, user="gid-abc", event_type="ai_gateway_proxy_use", quantity=6),
        # stored and flagged: no price, so no credits and no pool
        event(instance, 21, user="7", event_type="mystery_feature", quantity=1),
    ]
    report = usage_events_record(events, at=RECEIVED, report=IngestReport())
    assert (report.stored, report.unpriced) == (6, 1)
    return activation.license_key, instance


def ask(client, query, key, **variables):
    """As GitLab's client posts: its JSON headers, instanceId and the license key always among the variables."""
    response = client.post(
        "/graphql",
        data=json.dumps({"query": query, "variables": {"instanceId": "anonymous-id", "licenseKey": key, **variables}}),
        content_type="application/json",
        HTTP_ACCEPT="application/json",
        HTTP_USER_AGENT="GitLab/19.1.0",
    )
    body = response.json()
    assert response.status_code == 200, body
    return body


def usage_of(body):
    assert "errors" not in body, body["errors"]
    return body["data"]["subscription"]["gitlabCreditsUsage"]


def share(spent, pool_used, drawn=148):
    """A user's part of a pool: their usage × the pool's share of everything drawn (the documented rule)."""
    return float((D(spent) * D(pool_used) / drawn).quantize(D("0.000001")))


def days(*pairs):
    return [{"date": f"2024-03-{day:02d}", "creditsUsed": credits} for day, credits in pairs]


def test_metadata(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_METADATA_QUERY, key, gitlabVersion="19.1.0", **MARCH))
    assert usage == {
        "startDate": "2024-03-01",
        "endDate": "2024-03-31",
        "enabled": True,
        "isOutdatedClient": False,
        "lastEventTransactionAt": "2024-03-21T12:30:00Z",
        "overageTermsAccepted": True,
        "canAcceptOverageTerms": False,
        "dapPromoEnabled": False,
        "usageDashboardPath": None,
    }


def test_metadata_of_the_older_client_without_dates_is_the_current_month(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_METADATA_QUERY_WITHOUT_DATES, key, gitlabVersion="18.6.0"))
    today = dt.datetime.now(dt.UTC).date()
    assert usage["startDate"] == today.replace(day=1).isoformat()
    assert usage["endDate"][:7] == today.isoformat()[:7] and usage["endDate"] >= today.isoformat()
    assert usage["purchaseCreditsPath"] is None and usage["lastEventTransactionAt"] == "2024-03-21T12:30:00Z"


def test_subscription_usage(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_SUBSCRIPTION_USAGE_QUERY, key, **MARCH))
    assert usage["creditsUsed"] == 148.0
    assert usage["dailyAverage"] == float((D("148") / 31).quantize(D("0.000001")))  # a past month: all 31 days
    assert usage["dailyUsage"] == days((3, 20.0), (5, 100.0), (10, 15.0), (12, 10.0), (20, 3.0))
    top = usage_of(ask(client, GET_SUBSCRIPTION_USAGE_QUERY, key, sort="CREDITS_USED_DESC", limit=2, **MARCH))
    assert top["dailyUsage"] == days((5, 100.0), (3, 20.0))
    flows = usage_of(ask(client, GET_SUBSCRIPTION_USAGE_QUERY, key, flowTypes=["software_development"], **MARCH))
    assert flows["creditsUsed"] == 115.0 and flows["dailyUsage"] == days((5, 100.0), (10, 15.0))


def test_monthly_waiver(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_MONTHLY_WAIVER_QUERY, key, **MARCH))
    assert usage == {"monthlyWaiver": {"creditsUsed": 5.0, "totalCredits": 5.0, "dailyUsage": days((10, 5.0))}}


def test_monthly_commitment(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_MONTHLY_COMMITMENT_QUERY, key, **MARCH))
    assert usage == {"monthlyCommitment": {"totalCredits": 10.0, "creditsUsed": 10.0, "dailyUsage": days((10, 10.0))}}


def test_overage(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_OVERAGE_QUERY, key, **MARCH))
    assert usage == {"overage": {"isAllowed": True, "creditsUsed": 10.0, "dailyUsage": days((12, 7.0), (20, 3.0))}}


def test_paid_tier_trial(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_PAID_TIER_TRIAL_QUERY, key, **MARCH))
    assert usage == {"paidTierTrial": {"isActive": False, "dailyUsage": []}}


def test_one_time_credits_and_every_pool_add_up_to_the_usage(client, ledger):
    """Not among the newest client's texts, but in §9.3: the one-time credits, and the pools' sum."""
    key, _ = ledger
    query = """query($licenseKey: String, $startDate: ISO8601Date, $endDate: ISO8601Date) {
      subscription(licenseKey: $licenseKey) { gitlabCreditsUsage(startDate: $startDate, endDate: $endDate) {
        lastUpdated creditsUsed oneTimeCredits { creditsUsed totalCredits totalCreditsRemaining }
        monthlyWaiver { creditsUsed } monthlyCommitment { creditsUsed } overage { creditsUsed }
        usersUsage { creditsUsed }
      } } }"""
    usage = usage_of(ask(client, query, key, **MARCH))
    assert usage["oneTimeCredits"] == {"creditsUsed": 3.0, "totalCredits": 3.0, "totalCreditsRemaining": 0.0}
    pools = sum(
        usage[name]["creditsUsed"] for name in ("oneTimeCredits", "monthlyWaiver", "monthlyCommitment", "overage")
    )
    assert pools + 120 == usage["creditsUsed"] == usage["usersUsage"]["creditsUsed"]  # 120: the included credits
    assert usage["lastUpdated"].endswith("Z")


def test_users_usage_stats(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_USERS_USAGE_STATS_QUERY, key, **MARCH))
    assert usage == {
        "usersUsage": {
            "totalActiveUsers": 3,  # users 7 and 8, and a global user id
            "totalUsersUsingCredits": 3,
            "totalUsersUsingMonthlyCommitment": 3,
            "totalUsersUsingOverage": 3,
            "creditsUsed": 148.0,
            "dailyUsage": days((3, 20.0), (5, 100.0), (10, 15.0), (12, 10.0), (20, 3.0)),
        }
    }


def test_usage_for_user_ids(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_USERS_USAGE_QUERY, key, userIds=[7, 8, 99], **MARCH))
    seven, eight, nobody = usage["usersUsage"]["users"]
    assert seven == {
        "userId": 7,
        "totalCredits": 12.0,  # Premium: 12 included credits a seat
        "creditsUsed": share(120, 120),
        "totalCreditsUsed": 120.0,
        "monthlyCommitmentCreditsUsed": share(120, 10),
        "monthlyWaiverCreditsUsed": share(120, 5),
        "overageCreditsUsed": share(120, 10),
        "paidTierTrialCreditsUsed": 0.0,
    }
    assert eight["totalCreditsUsed"] == 25.0 and eight["creditsUsed"] == share(25, 120)
    assert nobody == {**{name: 0.0 for name in seven if name != "userId"}, "userId": 99, "totalCredits": 12.0}
    flows = usage_of(ask(client, GET_USERS_USAGE_QUERY, key, userIds=[8], flowTypes=["software_development"], **MARCH))
    assert flows["usersUsage"]["users"][0]["totalCreditsUsed"] == 15.0


def test_user_events(client, ledger):
    key, _ = ledger
    first = usage_of(ask(client, GET_USER_EVENTS_QUERY, key, userIds=[7], first=2, **MARCH))
    events = first["usersUsage"]["users"][0]["events"]
    assert events["nodes"] == [
        {
            "timestamp": "2024-03-21T09:00:00Z",
            "eventType": "mystery_feature",
            "flowType": "Mystery feature",
            "projectId": None,
            "namespaceId": None,
            "creditsUsed": None,  # unpriced: stored and flagged
            "sessionId": None,
            "showSessionLink": False,
        },
        {
            "timestamp": "2024-03-05T09:00:00Z",
            "eventType": "duo_agent_platform_workflow_completion",
            "flowType": "Software development",
            "projectId": None,
            "namespaceId": None,
            "creditsUsed": 100.0,
            "sessionId": None,
            "showSessionLink": False,
        },
    ]
    assert events["pageInfo"]["hasNextPage"] and not events["pageInfo"]["hasPreviousPage"]
    after = events["pageInfo"]["endCursor"]
    second = usage_of(ask(client, GET_USER_EVENTS_QUERY, key, userIds=[7], first=2, after=after, **MARCH))
    page = second["usersUsage"]["users"][0]["events"]
    assert [node["eventType"] for node in page["nodes"]] == ["code_completions"]
    assert page["nodes"][0]["creditsUsed"] == 20.0 and page["nodes"][0]["flowType"] == "Code suggestions"
    assert not page["pageInfo"]["hasNextPage"] and page["pageInfo"]["hasPreviousPage"]
    back = usage_of(
        ask(client, GET_USER_EVENTS_QUERY, key, userIds=[7], last=1, before=page["pageInfo"]["startCursor"], **MARCH)
    )
    assert [node["timestamp"] for node in back["usersUsage"]["users"][0]["events"]["nodes"]] == ["2024-03-05T09:00:00Z"]
    flows = usage_of(ask(client, GET_USER_EVENTS_QUERY, key, userIds=[7], flowTypes=["code_suggestions"], **MARCH))
    assert [node["creditsUsed"] for node in flows["usersUsage"]["users"][0]["events"]["nodes"]] == [20.0]


def test_a_bad_cursor_is_an_error_not_a_500(client, ledger):
    key, _ = ledger
    body = ask(client, GET_USER_EVENTS_QUERY, key, userIds=[7], after="not-a-cursor", **MARCH)
    assert body["errors"][0]["message"] == "The cursor is not valid."


def test_used_flow_types(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_USED_FLOW_TYPES_QUERY, key, userIds=[7], **MARCH))
    assert usage["usersUsage"]["users"][0]["usedFlowTypes"] == [
        {"id": "code_suggestions", "title": "Code suggestions"},
        {"id": "mystery_feature", "title": "Mystery feature"},
        {"id": "software_development", "title": "Software development"},
    ]


def test_daily_usage_for_user_id(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_USER_DAILY_USAGE_QUERY, key, userIds=[8], **MARCH))
    assert usage["usersUsage"]["users"][0]["dailyUsage"] == days((10, 15.0), (12, 10.0))
    flows = usage_of(
        ask(client, GET_USER_DAILY_USAGE_QUERY, key, userIds=[8], flowTypes=["software_development"], **MARCH)
    )
    assert flows["usersUsage"]["users"][0]["dailyUsage"] == days((10, 15.0))


def test_consumers(client, ledger):
    key, _ = ledger
    variables = {"sort": "TOTAL_CREDITS_USED_DESC", "first": 1, "last": None, "before": None, "after": None}
    first = usage_of(ask(client, GET_CONSUMERS_QUERY, key, flowTypes=None, **variables, **MARCH))
    consumers = first["usersUsage"]["consumers"]
    assert consumers["nodes"] == [
        {
            "userId": 7,
            "totalCredits": 12.0,
            "creditsUsed": share(120, 120),
            "totalCreditsUsed": 120.0,
            "monthlyCommitmentCreditsUsed": share(120, 10),
            "monthlyWaiverCreditsUsed": share(120, 5),
            "overageCreditsUsed": share(120, 10),
            "paidTierTrialCreditsUsed": 0.0,
            "entityType": "USER",
        }
    ]
    assert consumers["pageInfo"]["hasNextPage"] and not consumers["pageInfo"]["hasPreviousPage"]
    variables["after"] = consumers["pageInfo"]["endCursor"]
    second = usage_of(ask(client, GET_CONSUMERS_QUERY, key, **variables, **MARCH))["usersUsage"]["consumers"]
    assert [node["userId"] for node in second["nodes"]] == [8]  # the global user id is no GitLab user id
    assert not second["pageInfo"]["hasNextPage"] and second["pageInfo"]["hasPreviousPage"]
    ascending = usage_of(ask(client, GET_CONSUMERS_QUERY, key, sort="TOTAL_CREDITS_USED_ASC", **MARCH))
    assert [node["userId"] for node in ascending["usersUsage"]["consumers"]["nodes"]] == [8, 7]


def test_products(client, ledger):
    key, _ = ledger
    usage = usage_of(ask(client, GET_PRODUCTS_QUERY, key, **MARCH))
    assert usage["products"] == [
        {"id": "ai_gateway_proxy_use", "title": "Ai gateway proxy use", "creditsUsed": 3.0,
         "flowTypes": [{"id": "ai_gateway_proxy_use", "title": "Ai gateway proxy use"}]},
        {"id": "code_completions", "title": "Code completions", "creditsUsed": 20.0,
         "flowTypes": [{"id": "code_suggestions", "title": "Code suggestions"}]},
        {"id": "code_generations", "title": "Code generations", "creditsUsed": 10.0,
         "flowTypes": [{"id": "code_generations", "title": "Code generations"}]},
        {"id": "duo_agent_platform_workflow_completion", "title": "Duo agent platform workflow completion",
         "creditsUsed": 115.0, "flowTypes": [{"id": "software_development", "title": "Software development"}]},
        {"id": "mystery_feature", "title": "Mystery feature", "creditsUsed": 0.0,
         "flowTypes": [{"id": "mystery_feature", "title": "Mystery feature"}]},
    ]  # fmt: skip


def test_session_credits_answer_the_message_gitlab_backs_off_on(client, ledger):
    key, _ = ledger
    body = ask(client, GET_SESSION_CREDITS_QUERY, key, workflowIds=["11", "22"], **MARCH)
    assert body["errors"][0]["message"] == "sessionCreditsUsed is temporarily disabled"
    assert body["data"]["subscription"]["gitlabCreditsUsage"]["sessionCreditsUsed"] is None


def test_an_unknown_license_key_is_a_graphql_error(client, ledger):
    body = ask(client, GET_SUBSCRIPTION_USAGE_QUERY, "not-a-license-key", **MARCH)
    assert body["data"] == {"subscription": None}
    assert "license key is not valid" in body["errors"][0]["message"]


def test_a_key_that_binds_no_instance_any_more_is_a_graphql_error(client, ledger):
    key, instance = ledger
    instance.subscription = None
    instance.save(update_fields=["subscription"])
    body = ask(client, GET_MONTHLY_WAIVER_QUERY, key, **MARCH)
    assert body["data"] == {"subscription": None} and "license key is not valid" in body["errors"][0]["message"]


def test_a_namespace_without_a_license_key_is_a_graphql_error(client, db):
    response = client.post(
        "/graphql",
        data=json.dumps({"query": GET_OVERAGE_QUERY, "variables": {"namespaceId": "1234"}}),
        content_type="application/json",
    )
    assert response.status_code == 200 and "licenseKey is required" in response.json()["errors"][0]["message"]


def test_a_bad_period_is_a_graphql_error(client, ledger):
    key, _ = ledger
    body = ask(client, GET_OVERAGE_QUERY, key, startDate="2024-03-31", endDate="2024-03-01")
    assert body["errors"][0]["message"] == "endDate is before startDate."
    body = ask(client, GET_OVERAGE_QUERY, key, startDate="March", endDate="2024-03-01")
    assert "ISO 8601" in body["errors"][0]["message"]


def test_only_a_subscription_document_nests_deeper_than_five(client, ledger):
    key, _ = ledger
    assert READBACK_MAX_DEPTH == 8 and MAX_DEPTH == 5
    too_deep = '{ cloudConnectorAccess(licenseKey: "k", gitlabVersion: "1") { a { b { c { d { e } } } } } }'
    response = client.post("/graphql", data=json.dumps({"query": too_deep}), content_type="application/json")
    assert response.status_code == 400
    assert any("nested deeper than 5 fields" in error["message"] for error in response.json()["errors"])
    nine = "{ subscription { gitlabCreditsUsage { usersUsage { users(userIds: [1]) { events { nodes { a { b { c } } } } } } } } }"
    response = client.post("/graphql", data=json.dumps({"query": nine}), content_type="application/json")
    assert response.status_code == 400
    assert any("nested deeper than 8 fields" in error["message"] for error in response.json()["errors"])


def test_read_backs_count_on_their_own_counter_at_ten_times_the_sync_rate(client, ledger, settings, signing_key):
    settings.INSTANCE_RATE_PER_LICENSE_KEY = "2/m"
    key, _ = ledger
    answers = [
        client.post(
            "/graphql",
            data=json.dumps({"query": GET_PAID_TIER_TRIAL_QUERY, "variables": {"licenseKey": key, **MARCH}}),
            content_type="application/json",
            REMOTE_ADDR=f"10.0.1.{n}",
        )
        for n in range(21)
    ]
    assert [answer.status_code for answer in answers[:20]] == [200] * 20
    assert answers[20].status_code == 429
    assert "usage read-backs per license key: 20/60s" in answers[20].json()["errors"][0]["message"]
    sync = client.post(
        "/graphql",
        data=json.dumps({"query": SYNC_QUERY, "variables": {"licenseKey": key, "gitlabVersion": "19.1.0"}}),
        content_type="application/json",
        REMOTE_ADDR="10.0.2.1",
    )
    assert sync.status_code == 200, "a sync has its own counter"


def test_a_negative_adjustment_draws_the_pools_before_the_months_first_usage(client, ledger):
    """Charged like usage (the statement's rule), before any day's usage: the pools' daily usage moves by it."""
    key, instance = ledger
    credit_grant_create(
        subscription=instance.subscription, kind="adjustment", amount=D("-2"), month=dt.date(2024, 3, 1), reason="fix"
    )
    waiver = usage_of(ask(client, GET_MONTHLY_WAIVER_QUERY, key, **MARCH))["monthlyWaiver"]
    assert waiver == {"creditsUsed": 5.0, "totalCredits": 5.0, "dailyUsage": days((5, 2.0), (10, 3.0))}
    overage = usage_of(ask(client, GET_OVERAGE_QUERY, key, **MARCH))["overage"]
    assert overage["creditsUsed"] == 12.0 and overage["dailyUsage"] == days((12, 9.0), (20, 3.0))
    assert usage_of(ask(client, GET_SUBSCRIPTION_USAGE_QUERY, key, **MARCH))["creditsUsed"] == 148.0  # events only
