"""One review comment per pull request, updated on each push: find it by the marker, then PATCH or POST.

Uses the issues-comments REST API with the job's token. It works for fork PRs because the gating
workflow runs on `pull_request_target` (the base repository's token) and is given the PR number by
the event, not looked up from a head branch. Only a comment that starts with the marker *and* was
written by the token's own identity (github-actions[bot] by default) is updated: anybody can paste
the marker into a comment, and the bot must not keep editing theirs (it cannot anyway) or skip
posting because of it. The HTTP transport is injectable so tests run against a fake API.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from auditor.core.errors import ToolError
from reports.comment import MARKER

BOT = "github-actions[bot]"
PER_PAGE = 100
MAX_PAGES = 50  # 5,000 comments: far beyond any PR, and a bound on a misbehaving API

# (method, url, json body or None, headers) -> (status, parsed json)
Transport = Callable[[str, str, Any, dict[str, str]], tuple[int, Any]]


def urllib_transport(method: str, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (https API URL from the runner)
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ToolError(f"GitHub API {method} {url}: {exc}") from None


@dataclass(frozen=True)
class Upserted:
    action: str  # "created" | "updated"
    comment_id: int
    url: str | None


def upsert_comment(repository: str, pr: int, body: str, token: str, *, api: str = "https://api.github.com",
                   author: str = BOT, transport: Transport | None = None) -> Upserted:
    transport = transport or urllib_transport
    if "/" not in repository or not token:
        raise ToolError("comment: need OWNER/REPO and a token (GITHUB_TOKEN)")
    if not body.startswith(MARKER):
        raise ToolError("comment: the body does not start with the auditor's marker; refusing to post it")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "pgolf-auditor"}
    base = f"{api.rstrip('/')}/repos/{repository}"
    own = _find_own(base, pr, author, headers, transport)
    if own is None:
        status, doc = transport("POST", f"{base}/issues/{pr}/comments", {"body": body}, headers)
        action = "created"
    else:
        status, doc = transport("PATCH", f"{base}/issues/comments/{own}", {"body": body}, headers)
        action = "updated"
    if status not in (200, 201) or not isinstance(doc, dict):
        raise ToolError(f"comment: GitHub answered {status} to the {action[:-1]} request "
                        "(the job needs `pull-requests: write`; 422 means the body is too long)")
    return Upserted(action, int(doc.get("id", own or 0)), doc.get("html_url"))


def _find_own(base: str, pr: int, author: str, headers: dict[str, str], transport: Transport) -> int | None:
    """The oldest comment of ours that carries the marker (older duplicates stay as they are)."""
    for page in range(1, MAX_PAGES + 1):
        status, doc = transport("GET", f"{base}/issues/{pr}/comments?per_page={PER_PAGE}&page={page}", None, headers)
        if status != 200 or not isinstance(doc, list):
            raise ToolError(f"comment: GitHub answered {status} when listing the PR's comments")
        for c in doc:
            user = (c.get("user") or {}).get("login")
            if user == author and str(c.get("body") or "").startswith(MARKER):
                return int(c["id"])
        if len(doc) < PER_PAGE:
            return None
    return None
