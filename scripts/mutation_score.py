"""The mutation score per module from mutmut's results (docs/testing.md).

    .venv/bin/python scripts/mutation_score.py     # after (or during) `mutmut run`

Killed (and timed-out) mutants over those checked; "no tests" counts as not killed. Mutants not yet
checked are listed apart.
"""

import subprocess
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout", "segfault"}


def main() -> int:
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True)
    counts: dict[str, Counter] = defaultdict(Counter)
    for line in listing.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" not in name:
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        counts[module][status] += 1
    print("| module | killed | survived | no tests | score | not checked yet |")
    print("|---|---:|---:|---:|---:|---:|")
    for module in sorted(counts):
        count = counts[module]
        killed = sum(count[status] for status in KILLED)
        checked = killed + count["survived"] + count["no tests"] + count["suspicious"]
        score = f"{killed / checked:.0%}" if checked else "-"
        print(f"| {module} | {killed} | {count['survived']} | {count['no tests']} | {score} | {count['not checked']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
