"""Regenerate the gRPC code of proto/tastebud/v1 (the one command: `make proto`).

The generated ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` files sit beside their
``.proto`` and install as the package ``tastebud.v1``. They are committed so that a plain
``pip install .`` needs no code generator; ``--check`` regenerates into a temporary folder and
fails when the committed files differ (CI runs it), so they can never drift or be hand-edited.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "tastebud" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    """Run protoc on every .proto of tastebud/v1, writing under ``out_root``."""
    from grpc_tools import protoc  # dev-only dependency, imported when used

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / "tastebud" / "v1").glob("*_pb2*"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            stale = [
                f.name for f in fresh
                if not (PACKAGE_DIR / f.name).exists() or not filecmp.cmp(f, PACKAGE_DIR / f.name, shallow=False)
            ]
            committed = {p.name for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
            stale += sorted(committed - {f.name for f in fresh})
            if stale:
                print(f"generated gRPC code is stale: {', '.join(stale)}; run `make proto`", file=sys.stderr)
                return 1
            print("generated gRPC code is up to date")
            return 0
        for f in fresh:
            shutil.copyfile(f, PACKAGE_DIR / f.name)
        (PACKAGE_DIR / "__init__.py").write_text('"""Generated gRPC code for tastebud.v1; regenerate with `make proto`."""\n')
        print(f"wrote {', '.join(f.name for f in fresh)} to {PACKAGE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
