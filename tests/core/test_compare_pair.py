"""Difference of two volumes on the original grid, with a symmetric display range."""

import numpy as np

from app.core.compare_pair import difference
from app.core.orientation_phantom import orientation_phantom
from app.core.provenance import Provenance


def test_difference_is_original_minus_other_and_keeps_provenance():
    # One sign convention with compare's residual: original - synthesized.
    original = orientation_phantom()
    other = original.with_voxels(original.voxels + 5.0, provenance=Provenance("gan", "2"))
    result = difference(original, other)
    assert np.allclose(result.volume.voxels, -5.0)
    assert result.volume.geometry.allclose(original.geometry)
    assert result.volume.provenance is other.provenance  # the difference shows synthesized data
    assert result.symmetric_range == 5.0


def test_identical_volumes_get_a_nonzero_range():
    original = orientation_phantom()
    assert difference(original, original).symmetric_range == 1.0
