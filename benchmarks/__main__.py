"""``python -m benchmarks [name ...]``: run every benchmarks/bench_*.py module's ``main()``
(or only the named ones, e.g. ``service``). Each starts its own private redis-server and
prints medians and ratios against a baseline measured in the same run."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    wanted = sys.argv[1:]
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    for name in names:
        if wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main()
