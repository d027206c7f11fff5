"""``tastebud web``: the homepage website, served by uvicorn, talking to a tastebud server.

    tastebud web --target localhost:50051 --port 8080      # a running tastebud serve
    tastebud web --demo --port 8080                        # demo data -> index -> serve + web

``--demo`` is what ``make web`` runs: it writes the demo data and builds its index once (kept
in ``--workdir``, the same folder ``make demo`` uses), starts ``tastebud serve`` as its own
process on a free port, and serves the website against it; Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from tastebud.errors import TastebudError


def add_web(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="the homepage website (server-rendered, htmx) on top of a tastebud server",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Serve the homepage website. It talks to tastebud only through the tastebud.v1 "
                                   "gRPC API, every call with a deadline.")
    p.add_argument("--target", default="localhost:50051", help="host:port of a tastebud server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind ([::] or 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port")
    p.add_argument("--timeout", type=float, default=2.0, help="deadline of each gRPC call, seconds")
    p.add_argument("--label", choices=("watched", "listened"), default="watched",
                   help="the catalog's verb: 'watched' (movies) or 'listened' (music)")
    p.add_argument("--labels", type=Path, help="TOML with the site's words (verb, action, event, nouns, [kinds])")
    p.add_argument("--row-size", type=int, default=10, help="cards per row")
    p.add_argument("--secret", default=None,
                   help="the digest's unsubscribe secret, to serve its links at /unsubscribe (default: $TASTEBUD_DIGEST_SECRET)")
    p.add_argument("--demo", action="store_true",
                   help="generate the demo data and index (once) and start tastebud serve on it; ignores --target")
    p.add_argument("--workdir", type=Path, default=Path(".demo"), help="with --demo: where demo data and indexes go")
    p.set_defaults(run=run_web)


def settings_from_args(args: argparse.Namespace, target: str):
    from tastebud.web.app import Settings
    from tastebud.web.labels import Labels

    if args.timeout <= 0:
        raise TastebudError(f"--timeout must be > 0, got {args.timeout}")
    if not 1 <= args.row_size <= 50:
        raise TastebudError(f"--row-size must be within 1..50, got {args.row_size}")
    try:
        labels = Labels.from_toml(args.labels, args.label) if args.labels else Labels.preset(args.label)
    except (OSError, ValueError) as exc:
        raise TastebudError(f"--labels: {exc}") from None
    from tastebud.digest.tokens import SECRET_ENV

    secret = args.secret if args.secret is not None else os.environ.get(SECRET_ENV, "")
    return Settings(target=target, timeout=args.timeout, labels=labels, row_size=args.row_size,
                    unsubscribe_secret=secret)


def serve_web(settings, host: str, port: int) -> None:
    import uvicorn

    from tastebud.web.app import create_app

    print(f"tastebud web: http://{host}:{port}/ (tastebud at {settings.target}); Ctrl-C stops", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)


def run_web(args: argparse.Namespace) -> int:
    if not args.demo:
        serve_web(settings_from_args(args, args.target), args.host, args.port)
        return 0
    return run_demo_web(args)


def run_demo_web(args: argparse.Namespace) -> int:
    from tastebud.cli.demo import free_port, wait_until_serving
    from tastebud.cli.main import main as tastebud_main
    from tastebud.ingest.demo import write_demo_data

    workdir: Path = args.workdir
    data_dir, index_root = workdir / "data", workdir / "indexes"
    if (index_root / "current").exists():
        print(f"== demo index: {index_root} (built before; delete {workdir} to rebuild)")
    else:
        print(f"== demo data -> {data_dir}")
        files = write_demo_data(data_dir)
        print(f"== tastebud build --out {index_root} (about a minute or two)")
        code = tastebud_main(["build", "--items", str(files.items), "--interactions", str(files.interactions),
                              "--config", str(files.config), "--shards", "4", "--out", str(index_root),
                              "--no-progress"])
        if code != 0:
            return code
    port = free_port()
    target = f"127.0.0.1:{port}"
    if args.labels is None and args.label == "watched":  # films and albums: the words follow each item's kind
        args.labels = Path(__file__).with_name("demo-labels.toml")
    settings = settings_from_args(args, target)
    print(f"== tastebud serve --index {index_root} --port {port}")
    server = subprocess.Popen([sys.executable, "-m", "tastebud.cli.main", "serve", "--index", str(index_root),
                               "--port", str(port)], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        wait_until_serving(target, server)
        serve_web(settings, args.host, args.port)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(f"tastebud serve exited with code {server.returncode}")
    return 0
