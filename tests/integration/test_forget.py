"""Forgetting a user is proven on the bytes: after Admin.ForgetUser no file tastebud wrote (the
SQLite store with its WAL and shared-memory files, every index version, the caches) contains
the user's id or one of their recorded events, their next Recommend is the cold-start answer,
and the next build, from input files that still name them, leaves them out.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import grpc
import pytest

from tastebud.cli.main import main as tastebud_main
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.histories import UserHistories
from tastebud.index.manifest import read_manifest, verify_files
from tastebud.index.publish import resolve_version_dir
from tastebud.ingest.config import DatasetConfig
from tastebud.ingest.demo import write_demo_data
from tastebud.ingest.interaction_store import FORGOTTEN_FILE, InteractionStore, without_users
from tastebud.ingest.readers import load_dataset
from tastebud.server.config import ServerConfig
from tastebud.train.two_tower import TwoTowerConfig
from tastebud.v1 import admin_pb2, admin_pb2_grpc
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

from live_server import ServerThread

USER = "zz-forget-me-4c1d"
# Recorded events carry distinctive timestamps, searched for in every file afterwards (SQLite
# stores REAL values as big-endian doubles; little-endian is checked too).
LIVE_TIMES = (1_700_000_123.625, 1_700_000_456.375, 1_700_000_789.125)
SHOWN_TIMES = (1_700_001_111.5, 1_700_001_222.25)


def build(files, encoder, root: Path, store: Path | None = None) -> Path:
    dataset = load_dataset(files.items, files.interactions, DatasetConfig.from_toml(files.config))
    if store is not None and store.exists():
        s = InteractionStore(store)
        dataset = without_users(dataset, s.forgotten_filter())
        s.close()
    result = build_index(dataset, encoder, root, BuildOptions(n_shards=2, progress=False, retrieval="two_tower",
                                                              ranker=None, two_tower=TwoTowerConfig(epochs=2, threads=1)))
    return result.version_dir


def files_holding(root: Path, needles: list[bytes]) -> dict[str, list[bytes]]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n for n in needles if n in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@pytest.fixture()
def world(tmp_path: Path, encoder):
    files = write_demo_data(tmp_path / "data", n_items=300, n_users=60, seed=3)
    items = [line.split(",")[0] for line in files.items.read_text().splitlines()[1:11]]
    with open(files.interactions, "a", encoding="utf-8") as f:
        for i, item in enumerate(items):
            f.write(f"{USER},{item},{1_600_000_000 + i * 3600},view,\n")
    root = tmp_path / "indexes"
    build(files, encoder, root)
    build(files, encoder, root)  # two versions on disk, both with the user's history
    server = ServerThread(ServerConfig(index=root, port=0, workers=2), encoder)
    yield files, root, items, server
    server.stop()


def test_forget_user_leaves_nothing_of_them(world, encoder) -> None:
    files, root, items, server = world
    with grpc.insecure_channel(server.target) as channel:
        stub, admin = pb_grpc.RecommenderStub(channel), admin_pb2_grpc.AdminStub(channel)
        assert stub.GetUser(pb.GetUserRequest(user_id=USER), timeout=5).history_length == 10
        stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
            pb.Interaction(user_id=USER, item_id=items[i], timestamp=t, event="play") for i, t in enumerate(LIVE_TIMES)]
            + [pb.Interaction(user_id=USER, item_id=items[5 + i], timestamp=t, event="impression")
               for i, t in enumerate(SHOWN_TIMES)]), timeout=5)
        outbox = root.parent / "outbox"
        assert tastebud_main(["digest", "--target", server.target, "--users", USER, "--out", str(outbox),
                              "--secret", "test-secret", "--no-record", "--no-progress"]) == 0
        assert len(list(outbox.glob("*.eml"))) == 1
        stub.SetSubscription(pb.SetSubscriptionRequest(user_id=USER, subscribed=False), timeout=5)
        exported = json.loads(admin.ExportUser(admin_pb2.ExportUserRequest(user_id=USER), timeout=10).json)
        assert len(exported["history"]) == 13 and len(exported["recorded_events"]) == 5
        assert exported["subscribed"] is False and len(exported["index_versions_with_history"]) == 2
        needles = [USER.encode()] + [struct.pack(fmt, t) for t in LIVE_TIMES + SHOWN_TIMES for fmt in (">d", "<d")]
        assert files_holding(root, needles), "the test must see the user in the files before forgetting"
        assert files_holding(outbox, needles[:1])

        receipt = admin.ForgetUser(admin_pb2.ForgetUserRequest(user_id=USER), timeout=30)
        assert (receipt.interactions_removed, receipt.impressions_removed, receipt.subscription_removed,
                receipt.history_items_removed) == (3, 2, True, 13)
        assert len(receipt.index_versions_rewritten) == 2

        assert files_holding(root, needles) == {}
        for version_dir in receipt.index_versions_rewritten:
            verify_files(root / version_dir, read_manifest(root / version_dir))  # checksums still hold
        profile = stub.GetUser(pb.GetUserRequest(user_id=USER, history_limit=10), timeout=5)
        assert not profile.known and profile.history_length == 0 and profile.subscribed
        cold = stub.Recommend(pb.RecommendRequest(user_id="someone-never-seen", k=10), timeout=5)
        after = stub.Recommend(pb.RecommendRequest(user_id=USER, k=10), timeout=5)
        assert [i.item_id for i in after.items] == [i.item_id for i in cold.items]
        assert [i.reason for i in after.items] == [i.reason for i in cold.items]

        again = admin.ForgetUser(admin_pb2.ForgetUserRequest(user_id=USER), timeout=30)
        assert again.interactions_removed == 0 and again.history_items_removed == 0 and \
            not again.index_versions_rewritten
        # The command line does the same and also clears the digest's outbox.
        assert tastebud_main(["forget", "--target", server.target, "--user", USER, "--outbox", str(outbox)]) == 0
        assert files_holding(outbox, needles) == {} and not list(outbox.glob("*.eml"))
        with pytest.raises(grpc.RpcError) as caught:
            admin.ForgetUser(admin_pb2.ForgetUserRequest(user_id=""), timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in caught.value.details()

    # The next build reads input files that still name the user; the store's salted hash keeps them out.
    version = build(files, encoder, root, store=root / "interactions.sqlite")
    assert USER not in UserHistories.read(version / "users.parquet").user_ids
    assert files_holding(root, needles) == {}
    assert resolve_version_dir(root) == version
    # So does `tastebud build` where the store is out of sight (another host, a Kubernetes job):
    # ForgetUser left the hashes, and only them, in the index root.
    assert (root / FORGOTTEN_FILE).exists()
    assert tastebud_main(["build", "--items", str(files.items), "--interactions", str(files.interactions),
                          "--config", str(files.config), "--shards", "2", "--retrieval", "content",
                          "--store", str(root.parent / "no-store-here.sqlite"), "--out", str(root),
                          "--no-progress"]) == 0
    assert USER not in UserHistories.read(resolve_version_dir(root) / "users.parquet").user_ids
    assert files_holding(root, needles) == {}
