"""Data in: item and interaction files, MovieLens folders or generated demo data -> ``Dataset``.

``load_dataset`` reads an items file and an interactions file (CSV, TSV, JSONL or Parquet) as
a ``DatasetConfig`` describes them; ``load_movielens`` reads a GroupLens MovieLens folder;
``write_demo_data`` writes a fictional, deterministic catalogue with users of known tastes.
Everything downstream consumes only the ``model`` classes. Importing this package reads nothing.
"""

from .config import DatasetConfig, InteractionsConfig, ItemsConfig
from .demo import SPECIAL_USERS, DemoData, DemoFiles, generate_demo, write_demo_data
from .model import Catalog, Dataset, InteractionLog, LoadReport
from .movielens import load_movielens
from .readers import InteractionsRead, load_dataset, read_catalog, read_interactions
from .template import Template, render_text

__all__ = [
    "SPECIAL_USERS",
    "Catalog",
    "Dataset",
    "DatasetConfig",
    "DemoData",
    "DemoFiles",
    "InteractionLog",
    "InteractionsConfig",
    "InteractionsRead",
    "ItemsConfig",
    "LoadReport",
    "Template",
    "generate_demo",
    "load_dataset",
    "load_movielens",
    "read_catalog",
    "read_interactions",
    "render_text",
    "write_demo_data",
]
