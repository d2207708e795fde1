"""The PR comment: capped under GitHub's limit, and one comment per PR updated in place (fake API)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.ci.upsert import BOT, upsert_comment
from auditor.cli import main
from auditor.core.errors import ToolError
from reports.comment import MARKER
from reports.comment_cap import COMMENT_BUDGET, GITHUB_COMMENT_LIMIT, cap_comment, size
from test_ci import TRACK, commit, git, write_record

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# Seven real folders whose reviews together exceed GitHub's comment limit: rejected PPM-mixture and
# n-gram records (long "must change" lists) and merged records (long evidence tables).
SEVEN = [
    "pr/PR1835/records/track_10min_16mb/2026-04-26_SP8192_ParResid_3LayerLoop_QK525_GatedAttn_PPM_TTT",
    "pr/PR1854/records/track_10min_16mb/2026-04-27_PR1797Base_PPMD_0.90236",
    "pr/PR1991/records/track_10min_16mb/2026-04-30_SP8192_PPMMixer_O5_TunedGate",
    "pr/PR2098/records/track_10min_16mb/2026-05-01_PR1873_PPMOptGate",
    "pr/PR1881/records/track_10min_16mb/2026-04-28_PR1797Base_PPMD_v2_FullVal_0.9019",
    "merged/records/track_10min_16mb/2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence",
    "merged/records/track_10min_16mb/2026-04-22_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT_MLPClip12",
]


@pytest.mark.skipif(not all((CORPUS / n).is_dir() for n in SEVEN), reason="../shared/corpus is not present")
def test_seven_folder_pr_comment_is_capped_and_the_summary_has_it_all(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("# PG\n")
    write_record(root, TRACK, "2026-04-01_Frontier", {42: 1.09000007, 314: 1.09050011, 999: 1.09100013})
    commit(root, "base", "2026-04-02T10:00:00+00:00")
    git(root, "checkout", "-q", "-b", "seven")
    for rel in SEVEN:
        shutil.copytree(CORPUS / rel, root / "records" / TRACK / rel.rsplit("/", 1)[-1])
    commit(root, "seven", "2026-05-02T10:00:00+00:00")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    out = tmp_path / "comment.md"
    code = main(["ci", "--repo", str(root), "--base", "main", "--head", "seven", "--quiet",
                 "--out", str(tmp_path / "full.md"), "--comment-out", str(out)])
    assert code == 1
    full, capped = (tmp_path / "full.md").read_text("utf-8"), out.read_text("utf-8")
    assert len(full) > GITHUB_COMMENT_LIMIT  # the uncapped review would be refused (HTTP 422)
    assert len(capped) < size(capped) <= COMMENT_BUDGET < GITHUB_COMMENT_LIMIT
    assert capped.startswith(MARKER + "\n## ❌ Parameter Golf audit: FAIL\n\n> [!NOTE]\n")
    assert "[job summary](https://github.com/o/r/actions/runs/77)" in capped
    for name in SEVEN:  # every folder keeps its row and its section heading
        assert capped.count(f"`{name.rsplit('/', 1)[-1]}`") >= 2, name
    assert summary.read_text("utf-8").startswith(full)  # the job summary has the whole review


def test_fitting_comment_is_unchanged():
    text = MARKER + "\n## ✅ Parameter Golf audit: PASS\n\nsmall\n"
    assert cap_comment(text) is text


def _fake_review(n: int, evidence: int) -> str:
    head = MARKER + "\n## ❌ Parameter Golf audit: FAIL\n\n| table |\n\n"
    sec = "".join(f"---\n\n### ❌ `F{i}`: FAIL\n\n1. must\n\n<details>\n<summary>Evidence: x</summary>\n\n"
                  + "e" * evidence + "\n</details>\n\nrepro\n\n" for i in range(n))
    return head + sec + "---\n<sub>auditor 0.1.0 · static review</sub>\n"


def test_sections_become_stubs_when_dropping_evidence_is_not_enough():
    text = _fake_review(5, 3000).replace("1. must", "1. " + "m" * 3000)
    out = cap_comment(text, budget=12_000)
    assert size(out) <= 12_000
    assert out.count("<details>") == 0 and out.count("### ❌ `F") == 5
    assert out.count("This folder's section is in the job summary.") == 2
    assert "2 of 5 folder section(s) are shortened" in out
    assert out.endswith("---\n<sub>auditor 0.1.0 · static review</sub>\n")


def test_evidence_goes_first_last_folder_first():
    out = cap_comment(_fake_review(3, 5000), budget=9_000)
    assert out.count("<details>") == 1 and out.index("<details>") < out.index("`F1`")
    assert "the evidence tables of 2 folder(s) are left out" in out


class FakeGitHub:
    """Issues-comments API of one PR, with pagination and authors."""

    def __init__(self, comments: list[dict]):
        self.comments = comments
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method, url, body, headers):
        assert headers["Authorization"] == "Bearer tok"
        self.calls.append((method, url.split("/repos/o/r", 1)[1]))
        if method == "GET":
            page = int(url.rsplit("page=", 1)[1])
            return 200, self.comments[(page - 1) * 100: page * 100]
        if method == "POST":
            c = {"id": 1000 + len(self.comments), "user": {"login": BOT}, "body": body["body"],
                 "html_url": "https://x/c"}
            self.comments.append(c)
            return 201, c
        cid = int(url.rsplit("/", 1)[1])
        c = next(c for c in self.comments if c["id"] == cid)
        c["body"] = body["body"]
        return 200, c


BODY = MARKER + "\n## ✅ Parameter Golf audit: PASS\n"


def test_first_run_posts_then_each_push_updates_the_same_comment():
    api = FakeGitHub([{"id": 1, "user": {"login": "alice"}, "body": "nice PR"}])
    first = upsert_comment("o/r", 7, BODY, "tok", transport=api)
    second = upsert_comment("o/r", 7, BODY + "v2\n", "tok", transport=api)
    assert (first.action, second.action, first.comment_id, second.comment_id) == ("created", "updated", 1001, 1001)
    assert [c["body"] for c in api.comments] == ["nice PR", BODY + "v2\n"]
    assert api.calls[-1] == ("PATCH", "/issues/comments/1001")


def test_marker_found_past_the_first_page_and_only_our_own():
    others = [{"id": i, "user": {"login": "u"}, "body": "x"} for i in range(150)]
    forged = {"id": 500, "user": {"login": "mallory"}, "body": BODY}  # pasted marker: not ours
    ours = {"id": 501, "user": {"login": BOT}, "body": BODY}
    api = FakeGitHub(others + [forged, ours])
    done = upsert_comment("o/r", 7, BODY + "new\n", "tok", transport=api)
    assert (done.action, done.comment_id) == ("updated", 501)
    assert forged["body"] == BODY and ours["body"] == BODY + "new\n"
    assert [m for m, _ in api.calls] == ["GET", "GET", "PATCH"]


def test_refuses_a_body_without_marker_and_reports_api_errors():
    with pytest.raises(ToolError, match="marker"):
        upsert_comment("o/r", 7, "hello", "tok", transport=FakeGitHub([]))
    with pytest.raises(ToolError, match="403"):
        upsert_comment("o/r", 7, BODY, "tok", transport=lambda m, u, b, h: (403, None))


def test_comment_command_caps_and_posts(tmp_path, monkeypatch):
    api = FakeGitHub([])
    monkeypatch.setattr("auditor.ci.upsert.urllib_transport", api)
    monkeypatch.setenv("GITHUB_TOKEN", "tok")
    body = tmp_path / "c.md"
    body.write_text(_fake_review(20, 5000), "utf-8")
    assert main(["comment", "--pr", "7", "--repository", "o/r", "--body-file", str(body)]) == 0
    assert len(api.comments) == 1 and size(api.comments[0]["body"]) <= COMMENT_BUDGET
    assert main(["comment", "--pr", "7", "--repository", "o/r", "--body-file", str(tmp_path / "nope")]) == 2
