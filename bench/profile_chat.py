"""Where a node spends its time under the chat's paced and multi-room workloads (py-spy).

    make profile-chat ARGS="--workload paced"
    .venv/bin/python bench/profile_chat.py [--workload paced|rooms|both] [--repeat 3]

bench/profile.py with the chat's workloads by default (it profiles the other apps' too, and
a node from another checkout: see its --help). The collapsed stacks are kept under
bench/results/profile-<workload>.txt (flamegraph.pl or speedscope read them).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile import main

if __name__ == "__main__":
    main(default=("both",))
