"""Study browser thumbnails follow the acquisition plane, with the physical aspect ratio."""

import numpy as np

from app.core.orientation_phantom import orientation_phantom
from app.core.planes import Plane
from app.ui.study_browser import THUMBNAIL_PIXELS, acquisition_plane, thumbnail


def test_thumbnail_uses_the_acquisition_plane_and_physical_aspect(qtbot):
    axial = orientation_phantom(size_ijk=(32, 40, 24), spacing_mm=(1.0, 1.5, 2.0))
    assert acquisition_plane(axial) is Plane.AXIAL
    picture = thumbnail(axial)
    # Axial field of view: 31 mm (x) by 58.5 mm (y) -> taller than wide.
    assert picture.height() == THUMBNAIL_PIXELS and picture.width() < picture.height()
    sagittal_order = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]])  # k runs along x: sagittal slices
    assert acquisition_plane(orientation_phantom(direction=sagittal_order)) is Plane.SAGITTAL
    one_frame = orientation_phantom(size_ijk=(32, 40, 1))
    assert not thumbnail(one_frame).isNull()


def test_a_synthesized_nifti_is_filed_under_its_source_patient_and_study(qtbot, tmp_path):
    from app.core.orientation_phantom import orientation_phantom
    from app.core.provenance import Provenance
    from app.io.nifti import load_nifti, save_nifti
    from app.ui.study_browser import StudyBrowser

    synthesized = orientation_phantom()
    synthesized.provenance = Provenance("mr-t1-denoise", "1.0.0")
    synthesized.metadata.update(PatientName="Doe^Jane", StudyDescription="MR brain")
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    item = browser.add_volume(load_nifti(save_nifti(synthesized, tmp_path / "out.nii.gz")))
    assert item.parent().text(0) == "MR brain" and item.parent().parent().text(0) == "Doe^Jane"
