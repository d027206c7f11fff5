"""The Chroma server (``chroma run``), queried through ``chromadb.HttpClient``.

Runs in .venv-peers. The server is its own process on a loopback port with a fresh persist
folder; each caller thread has its own HttpClient. Collection: HNSW, space ``ip``, Chroma's
defaults otherwise (max_neighbors 16, ef_construction 100); ``ef_search`` is changed between
tuning steps with ``collection.modify(configuration={"hnsw": {"ef_search": N}})``. A query
asks for k+1 ids and nothing else (``include=[]``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

NAME = "bench"


class Server:
    """``chroma run`` as a subprocess on a fixed loopback port; restartable on the same data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = common.free_port()
        self.proc: subprocess.Popen | None = None
        self.log = open(folder / "server.log", "a")

    def start(self) -> float:
        import chromadb

        chroma = Path(sys.executable).parent / "chroma"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([str(chroma), "run", "--path", str(self.folder / "data"), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            chromadb.HttpClient(host="127.0.0.1", port=self.port).heartbeat()
            return True

        common.wait_until(up, 120, "chroma", self.proc)
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def main() -> int:
    args = common.worker_args()
    work = common.load_work(args.work)
    folder = Path(work.config["scratch"]) / "chroma"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    server = Server(folder)
    try:
        start_s = server.start()
        common.log(f"chroma server up (pid {server.proc.pid}, port {server.port}) in {start_s:.1f}s")
        return measure_server(args, work, server, start_s)
    finally:
        server.stop()
        server.log.close()


def measure_server(args, work, server: Server, start_s: float) -> int:
    import chromadb

    cfg = work.config
    port = server.port
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    col = client.create_collection(NAME, configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
    n = len(work.vectors)
    batch = min(5000, client.get_max_batch_size())
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        block = np.asarray(work.vectors[start:start + batch], dtype=np.float32)
        col.add(ids=[str(i) for i in range(start, start + len(block))], embeddings=block)
    add_s = time.perf_counter() - t0
    while col.count() < n:
        time.sleep(0.2)
    col.query(query_embeddings=[work.vector(0).tolist()], n_results=11, include=[])
    build_s = time.perf_counter() - t0
    common.log(f"added {n} vectors in {add_s:.1f}s (counted and queryable after {build_s:.1f}s)")
    common.log(f"collection configuration: {client.get_collection(NAME).configuration_json}")

    def make_client():
        return chromadb.HttpClient(host="127.0.0.1", port=port).get_collection(NAME, embedding_function=None)

    def set_knob(value: int) -> None:
        # The running server keeps the loaded index with the ef_search it was opened with
        # (a modify alone changed nothing, checked): modify, then restart on the same data.
        chromadb.HttpClient(host="127.0.0.1", port=port).get_collection(NAME).modify(
            configuration={"hnsw": {"ef_search": value}})
        server.stop()
        server.start()

    def search(collection, qid: int, vector: np.ndarray) -> list:
        return collection.query(query_embeddings=[vector.tolist()], n_results=11, include=[])["ids"][0]

    tuned = common.tune(set_knob, cfg["knobs"]["chroma"], make_client, search, work, cfg["target_recall"],
                        fresh_client=True)
    active = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection(NAME).configuration_json
    common.log(f"ef_search = {tuned['value']} (collection configuration: {active['hnsw']})")
    measured = common.measure(make_client, search, work)
    memory = common.tree_memory(server.proc.pid)
    from importlib.metadata import version

    common.write_result(args.out, {
        "system": "chroma", "knob": "ef_search", "tuning": tuned, **measured,
        "build": {"add_s": add_s, "total_s": build_s, "server_start_s": start_s},
        "memory": memory,
        "config": {"index": "hnsw space=ip (Chroma defaults otherwise)", "collection_configuration": active,
                   "transport": "HTTP on 127.0.0.1 (chromadb.HttpClient)",
                   "tuning_note": "ef_search set by collection.modify and a server restart on the same data"},
        "versions": {"chromadb": version("chromadb"), "server": chromadb.HttpClient(host="127.0.0.1", port=port).get_version()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
