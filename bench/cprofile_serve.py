"""``parley serve`` under cProfile with a CPU-time clock (used by ``profile_chat.py``).

Writes the stats to ``$CPROF_OUT`` when the server stops (SIGINT)."""

import cProfile
import os
import sys
import time

from entrypoints.cli import main

profile = cProfile.Profile(time.process_time)
sys.argv = ["parley", "serve"]
profile.enable()
try:
    main()
finally:
    profile.disable()
    profile.dump_stats(os.environ["CPROF_OUT"])
