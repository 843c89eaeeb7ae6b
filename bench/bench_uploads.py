"""Peak memory of parsing hostile history uploads, before and after the hardening, in one run.

Each bomb (tests/hostile_uploads.py builds them; nothing is read from disk but this code) is
parsed by catalog.history_import.parse_history_file in a child process, which reports its peak
resident memory (VmHWM, reset just before the parse) above its baseline (resident memory just
before the parse, with Django loaded and the upload already in memory, as in the web process). A safety limit on the child's
address space (BENCH_UPLOADS_LIMIT_MIB above its baseline, default 3072) keeps the machine up
when a parse would take more: such a run reports "over the limit".

"after" is this tree. "before" is the code at BENCH_UPLOADS_BEFORE (a git revision, default
afce587: main before the hardening), extracted with `git archive` into a temporary folder;
BENCH_UPLOADS_BEFORE=none skips it. The reference is a legitimate export: a 20,000-row
ratings.csv (the largest the importer takes) parsed by this tree.

Target: the worst bomb under 100 MiB above the baseline. BENCH_BOMB_MIB (default 1024) sets how
far the bombs expand (the bzip2 one a quarter of it: it is slow to build).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = os.environ.get("BENCH_UPLOADS_BEFORE", "afce587")
BOMB_MIB = int(os.environ.get("BENCH_BOMB_MIB", "1024"))
LIMIT_MIB = int(os.environ.get("BENCH_UPLOADS_LIMIT_MIB", "3072"))
TARGET_MIB = 100
MiB = 1024 * 1024

# Runs in the child: python -c CHILD <tree> <file> <upload name> <address-space limit in MiB>.
CHILD = r"""
import json, os, resource, sys
tree, path, name, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
os.chdir(tree)
os.environ["DJANGO_SETTINGS_MODULE"] = "movierec.settings"
import django
django.setup()
from catalog import history_import

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

def address_space():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

data = open(path, "rb").read()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets the peak (VmHWM) to the current resident size: start-up peaks do not count
baseline = status("VmRSS")
resource.setrlimit(resource.RLIMIT_AS, (address_space() + limit * 1024 * 1024, resource.RLIM_INFINITY))
try:
    parsed = history_import.parse_history_file(name, data)
    outcome = f"accepted: {len(parsed.rows)} rows"
except history_import.HistoryFileError as error:
    outcome = f"refused: {error}"
except MemoryError:
    outcome = "over the limit (MemoryError)"
except Exception as error:
    outcome = f"HTTP 500: {type(error).__name__}: {error}"
peak = status("VmHWM")
print(json.dumps({"above_baseline_mib": max(0, peak - baseline) / 2**20, "outcome": outcome[:110]}))
"""


def _bombs() -> list[tuple[str, str, callable]]:
    sys.path.insert(0, str(ROOT))
    from tests import hostile_uploads as corpus

    gib = BOMB_MIB * MiB
    return [
        ("deflate bomb, header says 1 KB", "export.zip",
         lambda: corpus.zip_bomb(zipfile.ZIP_DEFLATED, gib, declared=1024, fill=b" ")),
        ("deflate bomb, header says 9 MB", "export.zip",
         lambda: corpus.zip_bomb(zipfile.ZIP_DEFLATED, gib, declared=9 * MiB, fill=b" ")),
        ("deflate bomb, honest header", "export.zip", lambda: corpus.zip_bomb(zipfile.ZIP_DEFLATED, gib, fill=b" ")),
        ("bzip2 bomb, header says 1 KB", "export.zip",
         lambda: corpus.zip_bomb(zipfile.ZIP_BZIP2, gib // 4, declared=1024)),
        ("LZMA bomb, header says 1 KB", "export.zip",
         lambda: corpus.zip_bomb(zipfile.ZIP_LZMA, gib, declared=1024, fill=b" ")),
        ("10 MB zip of empty members", "export.zip", lambda: _members_up_to(corpus, 10 * MiB)),
        ("10 MB CSV, one line of commas", "ratings.csv",
         lambda: corpus.RATINGS_HEADER + b"2024-01-02,X,1999,,4" + b"," * (10 * MiB - 100) + b"\n"),
        ("10 MB CSV of blank lines", "ratings.csv", lambda: corpus.RATINGS_HEADER + b"\n" * (10 * MiB - 100)),
    ]


def _members_up_to(corpus, size: int) -> bytes:
    """As many empty members as fit in `size` bytes (what the 10 MB upload limit allows)."""
    per_member = len(corpus.many_members(10_000)) / 10_000
    count = int(size / per_member)
    while len(data := corpus.many_members(count)) > size:
        count -= count // 40
    return data


def _ratio(measured: dict, reference: dict) -> str:
    # Below 1 MiB a ratio says nothing (allocator noise); "-" then.
    if not reference["above_baseline_mib"] >= 1:
        return "-"
    return f"{measured['above_baseline_mib'] / reference['above_baseline_mib']:.3f}"


def _legit_export() -> bytes:
    rows = "".join(f"2023-{1 + i % 12:02d}-{1 + i % 28:02d},A Film Called {i},{1900 + i % 120},https://boxd.it/{i:x},{1 + i % 9 / 2}\n"
                   for i in range(20_000))
    return b"Date,Name,Year,Letterboxd URI,Rating\n" + rows.encode()


def _measure(tree: Path, path: Path, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "DATABASE_URL": f"sqlite:///{tree / 'bench-unused.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(path), name, str(LIMIT_MIB)],
                            capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:  # killed: by the kernel, or an error outside the parse
        return {"above_baseline_mib": float("nan"), "outcome": f"child died ({result.returncode}): {result.stderr[-200:]}"}
    return json.loads(lines[-1])


def _before_tree(folder: Path) -> Path | None:
    if BEFORE.lower() == "none":
        return None
    tree = folder / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE], capture_output=True)
    if archive.returncode:  # not a git checkout, or the revision is unknown: measure "after" only
        print(f"before: skipped (git archive {BEFORE}: {archive.stderr.decode().strip()[:200]})")
        return None
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def main():
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as temp:
        folder = Path(temp)
        before = _before_tree(folder)
        legit = folder / "legit.csv"
        legit.write_bytes(_legit_export())
        reference = _measure(ROOT, legit, "ratings.csv")
        print(f"reference: a legitimate 20,000-row ratings.csv ({legit.stat().st_size / MiB:.1f} MiB) parsed by this tree: "
              f"{reference['above_baseline_mib']:.1f} MiB above baseline ({reference['outcome']})")
        print(f"bombs expand to {BOMB_MIB} MiB (bzip2: {BOMB_MIB // 4} MiB); child address space capped at "
              f"baseline + {LIMIT_MIB} MiB; before = {BEFORE}")
        header = f"{'upload':34} {'on disk':>10} {'before MiB':>11} {'after MiB':>10} {'after/before':>12} {'after/ref':>9}"
        print(header)
        worst, outcomes = 0.0, []
        for label, name, build in tqdm(_bombs(), desc="Building and parsing bombs", unit=" bomb", file=sys.stderr):
            started = time.perf_counter()
            path = folder / name
            path.write_bytes(build())
            built = time.perf_counter() - started
            after = _measure(ROOT, path, name)
            old = _measure(before, path, name) if before else {"above_baseline_mib": float("nan"), "outcome": "not run"}
            worst = max(worst, after["above_baseline_mib"])
            print(f"{label:34} {path.stat().st_size / 1024:>8.0f}KB {old['above_baseline_mib']:>11.1f} "
                  f"{after['above_baseline_mib']:>10.1f} {_ratio(after, old):>12} {_ratio(after, reference):>9}"
                  f"   (built in {built:.0f} s)")
            outcomes.append((label, old["outcome"], after["outcome"]))
        print("outcomes (before → after):")
        for label, old, new in outcomes:
            print(f"  {label}: {old}\n  {'':{len(label)}}  → {new}")
        verdict = "MET" if worst < TARGET_MIB else "NOT MET"
        print(f"worst bomb after the hardening: {worst:.1f} MiB above baseline (target < {TARGET_MIB} MiB): {verdict}")
