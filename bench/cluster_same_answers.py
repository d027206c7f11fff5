"""Does the cluster answer as the single process does? ``tastebud cluster up`` (every shard of
the index x 2 replicas + the router) against ``tastebud serve`` on the same index, compared
call by call: Recommend for the first 200 users (k=10, with and without diversity),
SimilarItems and SearchItems.

    python bench/cluster_same_answers.py --index .bench/ml100k      # made by `make bench-serving`
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
import grpc
from tastebud.cluster.launcher import LaunchOptions, LauncherThread
from tastebud.cli.demo import free_port, wait_until_serving
from tastebud.index.histories import UserHistories
from tastebud.index.publish import resolve_version_dir
from tastebud.v1 import recommender_pb2 as pb, recommender_pb2_grpc as pbg
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--index", type=Path, required=True, help="an index root built by tastebud build")
parser.add_argument("--item", default="", help="SimilarItems of this item id (default: the first item)")
index = parser.parse_args().index
item = parser.parse_args().item
users = UserHistories.read(resolve_version_dir(index) / "users.parquet").user_ids[:200]
port = free_port()
store = Path(tempfile.mkdtemp()) / "s.sqlite"
single = subprocess.Popen([sys.executable, "-m", "tastebud.cli.main", "serve", "--index", str(index), "--port", str(port), "--store", str(store)], stderr=subprocess.DEVNULL)
try:
    wait_until_serving(f"127.0.0.1:{port}", single)
    with LauncherThread(LaunchOptions(index=index, replicas=2, port=0, workdir=Path(tempfile.mkdtemp()))) as c:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as a, grpc.insecure_channel(c.endpoints().router) as b:
            one, two = pbg.RecommenderStub(a), pbg.RecommenderStub(b)
            same = 0; reqs = 0
            for u in users:
                for req in (pb.RecommendRequest(user_id=u, k=10), pb.RecommendRequest(user_id=u, k=10, diversity=0.3)):
                    x, y = one.Recommend(req, timeout=10), two.Recommend(req, timeout=10)
                    reqs += 1
                    same += [i.item_id for i in x.items] == [i.item_id for i in y.items] and not y.degraded
            sim = pb.SimilarItemsRequest(item_id=item or one.Recommend(pb.RecommendRequest(k=1)).items[0].item_id, k=10)
            s_same = [i.item_id for i in one.SimilarItems(sim).items] == [i.item_id for i in two.SimilarItems(sim).items]
            q = pb.SearchItemsRequest(text="star wars", k=10)
            q_same = [i.item_id for i in one.SearchItems(q).items] == [i.item_id for i in two.SearchItems(q).items]
            print(f"{index}: {same} of {reqs} Recommend answers identical (200 users, k=10, with and without diversity); SimilarItems same: {s_same}; SearchItems same: {q_same}")
finally:
    single.terminate(); single.wait(30)
