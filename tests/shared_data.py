"""Where the tests find what the project does not ship: the reference scorer and MovieLens 100K.

``$TASTEBUD_SHARED`` names the shared folder (default: ``shared`` beside the repository), and
``$TASTEBUD_ML100K`` the MovieLens 100K folder (default: ``data/ml-100k`` in the shared
folder). Tests that need them skip, naming the path, when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TASTEBUD_SHARED") or REPO.parent / "shared")
SCORER = SHARED / "eval" / "score.py"
ML100K = Path(os.environ.get("TASTEBUD_ML100K") or SHARED / "data" / "ml-100k")
