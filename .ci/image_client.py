"""The image smoke test's GitLab: `activate BASE CODE INSTANCE` prints the license key (GitLab 19.x text),
`sync BASE LICENSE_KEY INSTANCE` prints the kid of the token it gets. Run with the project's interpreter, from the
project's root: the query texts are the tests' own."""

import base64
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import ACTIVATE_MUTATION_19 as ACTIVATE  # noqa: E402
from tests.helpers import SYNC_QUERY as SYNC  # noqa: E402


def graphql(base: str, query: str, variables: dict, instance: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", "X-Gitlab-Instance-Id": instance, "User-Agent": "GitLab/19.1.0"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main(action: str, base: str, secret: str, instance: str) -> str:
    if action == "activate":
        variables = {
            "activationCode": secret,
            "instanceIdentifier": instance,
            "uniqueInstanceId": "image-smoke",
            "automated": True,
            "gitlabVersion": "19.1.0-ee",
            "hostname": "gitlab.image-smoke.test",
        }
        payload = graphql(base, ACTIVATE, variables, instance)["data"]["cloudActivationActivate"]
        if not payload["licenseKey"]:
            raise SystemExit(f"activation refused: {payload}")
        return payload["licenseKey"]
    body = graphql(base, SYNC, {"licenseKey": secret, "gitlabVersion": "19.1.0-ee"}, instance)
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return header["kid"]


if __name__ == "__main__":
    print(main(*sys.argv[1:5]))
