"""Train the shipped 'mr_t1_brain_tissue' segmentation plugin (see MODEL_CARD.md) on the CPU.

python plugins/mr_t1_brain_tissue/train.py [--quick] [--max-seconds S] [--device cpu|cuda]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.plugins.training.segmentation import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
