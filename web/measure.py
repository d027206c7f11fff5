"""Homepage render time with the server warm: ``python -m tastebud.web.measure``.

    tastebud web --demo --port 8080 &                          # or tastebud serve + tastebud web
    python -m tastebud.web.measure --url http://127.0.0.1:8080 --user 1 --loads 50

Signs in as ``--user`` (the demo cookie), loads the homepage ``--warmup`` times, then
``--loads`` times one after another over HTTP (httpx, one keep-alive connection), and prints
the median, p90 and max wall time per page, and the page's size. Each load is a full render:
GetUser, GetIndexInfo, four row calls and the impressions call (after the response).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tastebud.web.measure", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="where tastebud web runs")
    p.add_argument("--user", default="1", help="user id to sign in as")
    p.add_argument("--loads", type=int, default=50, help="measured homepage loads")
    p.add_argument("--warmup", type=int, default=5, help="loads before measuring")
    p.add_argument("--path", default="/home", help="page to load")
    args = p.parse_args(argv)
    times, size = [], 0
    with httpx.Client(base_url=args.url, cookies={"tastebud_user": args.user},
                      timeout=30.0) as client:
        for i in range(args.warmup + args.loads):
            start = time.perf_counter()
            response = client.get(args.path)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                print(f"{args.path}: HTTP {response.status_code}", file=sys.stderr)
                return 1
            if i >= args.warmup:
                times.append(elapsed * 1000)
                size = len(response.content)
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"{args.path} as user {args.user}: {len(times)} loads, median {statistics.median(times):.1f} ms, "
          f"p90 {p90:.1f} ms, max {times[-1]:.1f} ms, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
