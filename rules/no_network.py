"""NO_NETWORK: no downloads, network calls or package installation while the script runs."""

from __future__ import annotations

import re
import shlex

from auditor.analysis.program import CodeAnalysis
from rules._code import check_code, graded
from auditor.core.model import Evidence, Finding
from auditor.core.contract import Rule
from rules._cite import README_RULES, issue, pr

_NET_PREFIXES = ("urllib.request", "urllib.urlopen", "urllib2", "requests", "httpx", "aiohttp", "huggingface_hub",
                 "torch.hub", "datasets.load_dataset", "socket.create_connection", "socket.socket", "http.client",
                 "wget", "gdown", "boto3", "ftplib", "smtplib", "transformers.AutoModel", "urllib.request.urlretrieve")
_MISSING_FILE = re.compile(r"(exists|isfile|is_file|isdir|is_dir)\(|\bnot\s+\w*(path|file)", re.I)
_PROC_CALLS = {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
               "subprocess.Popen", "subprocess.getoutput", "subprocess.getstatusoutput", "os.system", "os.popen",
               "os.execv", "os.execvp", "os.spawnv", "os.spawnvp", "os.execl", "os.execlp"}
_NET_TOOLS = {"pip", "pip3", "apt", "apt-get", "conda", "mamba", "curl", "wget", "git", "huggingface-cli", "hf",
              "aria2c", "gsutil", "aws", "scp", "rsync", "ssh", "uv", "npm", "brew", "yum", "dnf"}
_ALWAYS_INFO = {"nvidia-smi", "nproc", "hostname", "uname", "df", "free", "lscpu", "date", "sync"}
_LOCAL_TOOLS = {"pyminify": "measures code size (python-minifier must be installed)",
                "g++": "compiles a helper at run time (accepted as setup in #1514; see ARTIFACT_SIZE)",
                "gcc": "compiles a helper at run time (see ARTIFACT_SIZE)",
                "c++": "compiles a helper at run time (see ARTIFACT_SIZE)",
                "nvcc": "compiles a helper at run time (see ARTIFACT_SIZE)"}


def _program(strings: list[str]) -> tuple[str | None, str]:
    text = " ".join(strings)
    if not strings:
        return None, ""
    first = strings[0]
    try:
        words = shlex.split(first) if " " in first else [first]
    except ValueError:
        words = first.split()
    prog = words[0].rsplit("/", 1)[-1] if words else None
    if prog in ("sudo", "env") and len(words) > 1:
        prog = words[1].rsplit("/", 1)[-1]
    if prog and re.match(r"python\d?(\.\d+)?$", prog) and " -m " in f" {text} ":
        m = re.search(r"-m\s+(\S+)", text) or None
        if m is None and "-m" in strings:
            i = strings.index("-m")
            prog = strings[i + 1] if i + 1 < len(strings) else prog
        elif m is not None:
            prog = m.group(1)
    return prog, text


def _declared(ctx, prog: str) -> bool:
    sub = ctx.submission
    hay = " ".join(filter(None, [sub.readme, sub.requirements]))
    return bool(prog) and re.search(rf"(?<![\w-]){re.escape(prog)}(?![\w-])", hay) is not None


def dynamic_findings(ctx) -> list[Finding]:
    """Network attempts the gauntlet's sandbox saw (blocked or recorded), by phase: at eval they fail."""
    obs = ctx.observations.get("gauntlet")
    out = []
    for a in obs.network if obs is not None else []:
        sev = "fail" if a.phase == "eval" else "warn"
        out.append(RULE.finding(sev, f"the sandboxed run attempted a network call ({a.call} to {a.target[:120]}) "
                                     f"during the {a.phase} phase; it was {'blocked' if a.blocked else 'recorded'}",
                                [Evidence("(gauntlet run)", None, f"{a.call} {a.target[:150]}")],
                                call=a.call, target=a.target, phase=a.phase, blocked=a.blocked, urls=a.urls,
                                dynamic=True))
    return out


def check(ctx) -> list[Finding]:
    return static_findings(ctx) + dynamic_findings(ctx)


def _search(ctx, ca: CodeAnalysis) -> tuple[list[Finding], str]:
    out: list[Finding] = []
    for ev in ca.of("ext"):
        q = ev.data.qual
        reach = ca.reach(ev)
        fallback = next((g for g in ev.data.guards or [] if _MISSING_FILE.search(g)), None)
        if q.startswith(_NET_PREFIXES) and not q.startswith("urllib.parse"):
            if fallback is not None:
                out.append(graded(RULE, ca, reach, "warn", "medium",
                                  f"{ca.where(ev.func)} calls `{q}` when a file is missing (`if {fallback}`); a "
                                  f"download fallback is setup, not evaluation, only if it never runs in the timed "
                                  f"run. Question for the author: are the files present before the run starts?",
                                  [ca.ev_evidence(ev)], pattern="download_fallback", call=q))
                continue
            out.append(graded(RULE, ca, reach, "fail", "high",
                              f"{ca.where(ev.func)} calls `{q}` at run time; downloads and network calls are not "
                              f"allowed during the run (README)", [ca.ev_evidence(ev)], pattern="network_call", call=q))
            continue
        if q not in _PROC_CALLS:
            continue
        strings = ev.data.strings or []
        prog, text = _program(strings)
        low = text.lower()
        installs = re.search(r"\b(pip3?|apt(-get)?|conda|mamba|uv)\b.*\binstall\b|https?://|\bgit\s+clone\b", low)
        if installs or (prog in _NET_TOOLS):
            out.append(graded(RULE, ca, reach, "fail", "high",
                              f"{ca.where(ev.func)} runs `{text[:80]}` through `{q}` at run time: package installation "
                              f"or network access while the script runs is not allowed (install at setup and "
                              f"declare it in the README instead)", [ca.ev_evidence(ev)],
                              pattern="install_or_download", program=prog))
        elif prog is None:
            out.append(graded(RULE, ca, reach, "warn", "medium",
                              f"{ca.where(ev.func)} starts a process through `{q}` with a command built at run time; "
                              f"check that it neither downloads nor installs anything",
                              [ca.ev_evidence(ev)], pattern="dynamic_command"))
        elif prog in _ALWAYS_INFO or prog in _LOCAL_TOOLS or _declared(ctx, prog):
            note = ("" if prog in _ALWAYS_INFO else f"; it {_LOCAL_TOOLS[prog]}" if prog in _LOCAL_TOOLS else
                    "; it is declared in the README/requirements (installed at setup, as accepted for lrzip in #1855)")
            out.append(graded(RULE, ca, reach, "info", "high",
                              f"{ca.where(ev.func)} calls the system binary `{prog}` through `{q}`{note}",
                              [ca.ev_evidence(ev)], pattern="system_binary", program=prog))
        else:
            out.append(graded(RULE, ca, reach, "warn", "medium",
                              f"{ca.where(ev.func)} calls `{prog}` through `{q}`, and neither the README nor "
                              f"requirements.txt mentions it. Question for the author: is it installed at setup "
                              f"(document it), and does it stay offline?",
                              [ca.ev_evidence(ev)], pattern="undeclared_binary", program=prog))
    return out, ""

LOOKED_FOR = "network call, download or package installation at run time"


def static_findings(ctx) -> list[Finding]:
    return check_code(ctx, RULE, lambda ca: _search(ctx, ca), LOOKED_FOR)


RULE = Rule(
    id="NO_NETWORK",
    title="No network access or installs at run time",
    summary="The script may not download, call the network or install packages while it runs.",
    explanation="""\
What is checked. Calls in the decoded code to network libraries (urllib.request, requests, huggingface_hub,
torch.hub, datasets.load_dataset, sockets, ...) and process launches (subprocess.*, os.system, os.popen) whose
command installs packages or fetches data (pip/apt-get/conda install, curl, wget, git clone, URLs).

Why it matters. README: "No external downloads, training dataset access, or network calls are allowed during
evaluation", and the artifact must be self-contained. Downloads can add capacity that is not paid for in the
16 MB.

Legal look-alikes. A system binary installed at setup and declared in the README, called through subprocess
(lrzip in #1855, accepted de facto) is info; nvidia-smi diagnostics are info; an undeclared binary is
NEEDS_REVIEW with the question whether it is installed at setup. Code behind a disabled switch is info.

How to verify by hand. Open the cited call and read the command; check the README's setup section for the
binary or package.""",
    citations=(README_RULES, pr(1855), issue(1856)),
    check=check,
    kind="code",
)
