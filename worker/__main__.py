"""``python -m worker``."""

from worker.cli import main
from worker.exiting import exit_now_if_threads_remain

code = main()
exit_now_if_threads_remain(code)
raise SystemExit(code)
