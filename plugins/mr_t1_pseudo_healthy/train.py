"""Train the shipped 'mr_t1_pseudo_healthy' plugin (see MODEL_CARD.md): a residual U-Net; full size trains on 2 CPU cores in 5-8 minutes

python plugins/mr_t1_pseudo_healthy/train.py [--quick] [--device cpu|cuda] [--iterations N]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.plugins.training.shipped import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--plugins", "mr_t1_pseudo_healthy", *sys.argv[1:]]))
