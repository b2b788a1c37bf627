"""What the machine doors share: reading an instance's headers as text we can store."""


def header(request, name: str) -> str:
    """A header value as text we can store (NUL characters dropped); empty when absent."""
    return request.headers.get(name, "").replace("\x00", "")


def instance_headers(request) -> dict:
    """What GitLab tells us about itself on every Cloud Connector request (17.x-19.x), as sync arguments.
    X-Gitlab-User-Id and X-Gitlab-Global-User-Id are accepted and ignored (often empty on a token sync)."""
    return {
        "hostname": header(request, "X-Gitlab-Host-Name"),
        "deployment_type": header(request, "X-Gitlab-Deployment-Type"),
        "claimed_instance_id": header(request, "X-Gitlab-Instance-Id"),
    }
