"""Builds through the CLI, failed builds, restarts and deadlines, with the real model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from tastebud.cli.main import main as tastebud
from tastebud.index.manifest import read_manifest
from tastebud.index.publish import resolve_version_dir
from tastebud.server.config import ServerConfig
from tastebud.train.two_tower import TwoTowerConfig
from tastebud.server.domain import Deadline, RecommendQuery
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

from live_server import ServerThread
from shared_data import ML100K



def snapshot(root: Path) -> dict[str, bytes]:
    current = resolve_version_dir(root)
    return {"current": str(current).encode(), **{p.name: p.read_bytes() for p in sorted(current.iterdir())}}


def test_cli_build_then_failed_build_leaves_the_published_index_untouched(tmp_path, demo_files, capsys):
    out = tmp_path / "indexes"
    args = ["build", "--items", str(demo_files.items), "--interactions", str(demo_files.interactions),
            "--config", str(demo_files.config), "--shards", "2", "--out", str(out), "--no-progress"]
    assert tastebud(args) == 0
    # The default model: an ensemble of 3 two-tower members side by side, plus the prior.
    assert read_manifest(resolve_version_dir(out)).retrieval["dimension"] == 3 * TwoTowerConfig().dim + 1
    before = snapshot(out)
    bad = tmp_path / "events.csv"
    lines = demo_files.interactions.read_text().splitlines()
    lines.insert(5, "9,no-such-item,1707348597,view,")
    bad.write_text("\n".join(lines) + "\n")
    args[4] = str(bad)
    assert tastebud(args) == 1
    err = capsys.readouterr().err
    assert "events.csv" in err and "line 6" in err and "no-such-item" in err
    assert snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        tastebud(["build", "--shards", "zero"])
    assert exc.value.code == 2


def test_the_command_is_installed_and_documents_its_defaults():
    out = subprocess.run([sys.executable, "-m", "tastebud.cli.main", "build", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--shards" in out and "default: 4" in out


def test_recorded_events_survive_a_restart_and_reach_the_next_build(tmp_path, demo_dataset, encoder, demo_files):
    from tastebud.index.build import BuildOptions, build_index

    root = tmp_path / "indexes"
    build_index(demo_dataset, encoder, root, BuildOptions(n_shards=2, progress=False))
    config = ServerConfig(index=root, port=0, workers=2)
    server = ServerThread(config, encoder)
    user, picks = "restart-user", ["11", "12", "13"]
    with grpc.insecure_channel(server.target) as ch:
        stub = pb_grpc.RecommenderStub(ch)
        stub.RecordInteractions(pb.RecordInteractionsRequest(
            interactions=[pb.Interaction(user_id=user, item_id=i, timestamp=1_800_000_000 + n)
                          for n, i in enumerate(picks)]), timeout=10)
        first = [i.item_id for i in stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=10).items]
    server.stop()
    server = ServerThread(config, encoder)
    with grpc.insecure_channel(server.target) as ch:
        again = [i.item_id for i in pb_grpc.RecommenderStub(ch).Recommend(
            pb.RecommendRequest(user_id=user, k=10), timeout=10).items]
    server.stop()
    assert again == first and not set(picks) & set(first)
    # The next build folds the store in, and the server does not count those events twice.
    assert tastebud(["build", "--items", str(demo_files.items), "--interactions", str(demo_files.interactions),
                     "--config", str(demo_files.config), "--shards", "2", "--out", str(root), "--no-progress",
                     "--members", "1"]) == 0
    assert read_manifest(resolve_version_dir(root)).retrieval["dimension"] == TwoTowerConfig().dim + 1  # one member
    server = ServerThread(config, encoder)
    core = server.running.service.recommender
    history = core.user_history(user, np.zeros(0, np.int64))
    assert [core.items.item_ids[r] for r in history.items.tolist()] == picks
    server.stop()


def test_an_expired_deadline_degrades_instead_of_failing(served, server):
    result = server.call(served.recommend(RecommendQuery(user_id="1", k=5), Deadline(expires_at=0.0)))
    assert result.degraded and result.notes


@pytest.mark.movielens
@pytest.mark.skipif(not (ML100K / "u.data").exists(), reason=f"MovieLens 100K folder absent: {ML100K}")
def test_build_and_serve_movielens(tmp_path, encoder):
    from tastebud.index.build import BuildOptions, build_index
    from tastebud.ingest import load_movielens

    root = tmp_path / "ml"
    # Training quality is measured by `tastebud eval`; here a short training keeps the test fast.
    fast = TwoTowerConfig(epochs=2, threads=1)
    result = build_index(load_movielens(ML100K), encoder, root,
                         BuildOptions(n_shards=4, progress=False, two_tower=fast, ranker=None))
    assert result.manifest.n_items == 1682 and result.manifest.n_users == 943 and result.manifest.n_events == 100_000
    server = ServerThread(ServerConfig(index=root, port=0, workers=2), encoder)
    with grpc.insecure_channel(server.target) as ch:
        stub = pb_grpc.RecommenderStub(ch)
        found = stub.SearchItems(pb.SearchItemsRequest(text="Star Wars", k=3), timeout=10)
        recs = stub.Recommend(pb.RecommendRequest(user_id="42", k=10), timeout=10)
    server.stop()
    assert found.items[0].title == "Star Wars"
    assert len(recs.items) == 10
