"""tastebud: personalised recommendations, embedded, sharded and served over gRPC.

The sub-packages follow the data flow: ``ingest`` (files in) -> ``embed`` (vectors) ->
``index`` (sharded FAISS on disk) -> ``server`` (gRPC). ``cli`` is the ``tastebud`` command and
``v1`` is the generated gRPC code. Importing any of them does no work. (This file lives in the
folder `common/`; see the package map in pyproject.toml.)
"""

__version__ = "0.1.0"
