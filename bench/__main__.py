"""Run benchmarks: `python -m bench` (all) or `python -m bench import recommend` (bench_import, bench_recommend).

Each bench/bench_<name>.py module has a main() that measures and prints its figures, including
ratios against a reference measured in the same run.
"""
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [name for name in names if name not in available()]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}. Available: {', '.join(available())}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"=== bench {name} ===", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").main()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"bench {name} FAILED: {exc!r}", flush=True)
            failed.append(name)
        print(f"=== bench {name}: {time.perf_counter() - started:.1f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
