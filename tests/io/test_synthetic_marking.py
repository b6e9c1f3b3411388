"""A synthesized series stays synthetic through every transfer syntax and the enhanced form."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.io.dicom_export import write_derived_series
from app.io.dicom_marking import read_marking, series_marking
from app.io.dicom_scan import scan
from app.io.loader import load_volume
from tests.io.series_factory import write_series
from tests.io.synthetic_variants import VARIANTS, small_synthetic_volume, variant, without_tool


@pytest.fixture(scope="module")
def variants_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("marking")
    write_derived_series(small_synthetic_volume(), root / "derived")
    return root


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_scans_and_loads_as_synthetic_with_its_plugin(variants_root, name):
    if without_tool(name):
        pytest.skip("dcmtk is not installed")
    folder = variant(variants_root / "derived", variants_root, name)
    (series,) = scan(folder).all_series()
    assert series.synthetic
    assert not any("mixed" in warning for warning in series.warnings)
    volume = load_volume(folder)
    assert volume.is_synthetic
    assert volume.voxels.shape == (4, 32, 32)
    if name != "enhanced-shared-group":  # that one carries Synthetic Data YES alone
        assert volume.provenance.plugin_name == "mr-t1-denoise"
        assert volume.provenance.plugin_version == "1.0.0"


def test_transcoded_pixels_are_unchanged(variants_root):
    reference = load_volume(variants_root / "derived").voxels
    for name in ("rle", "jpeg2000", "enhanced-per-frame-group"):
        if not without_tool(name):
            assert (
                load_volume(variant(variants_root / "derived", variants_root, name)).voxels == reference
            ).all()


def test_acquired_series_is_not_synthetic(tmp_path):
    write_series(tmp_path, [0.0, 1.0, 2.0])
    (series,) = scan(tmp_path).all_series()
    assert not series.synthetic and not load_volume(tmp_path).is_synthetic


def test_a_mixed_series_is_synthetic_with_a_warning(tmp_path):
    paths = write_derived_series(small_synthetic_volume(), tmp_path / "mixed")
    for path in paths[1:]:  # only the first slice keeps its marking
        dataset = pydicom.dcmread(path)
        for keyword in ("SyntheticData", "DerivationDescription", "DerivationCodeSequence"):
            delattr(dataset, keyword)
        dataset.save_as(path)
    (series,) = scan(tmp_path / "mixed").all_series()
    assert series.synthetic
    assert any("mixed series: 1 of 4 images are marked synthetic" in w for w in series.warnings)


def test_marking_without_synthetic_data_still_counts():
    # An archive that drops the newer (0008,001C) keeps the derivation attributes.
    by_code = Dataset()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "gan",
        "99SYNTHVIEW",
        "Synthesized by gan 1",
    )
    by_code.DerivationCodeSequence = Sequence([code])
    assert read_marking(by_code).synthetic
    by_equipment = Dataset()
    equipment = Dataset()
    equipment.Manufacturer = "SynthView"
    equipment.ContributionDescription = "Synthesized by gan 1 (T1->T2)"
    by_equipment.ContributingEquipmentSequence = Sequence([equipment])
    marking = read_marking(by_equipment)
    assert marking.synthetic and marking.derivation_description.startswith("Synthesized by gan")
    acquired = Dataset()
    acquired.ImageType = ["DERIVED", "PRIMARY"]
    acquired.SyntheticData = "NO"
    assert not read_marking(acquired).synthetic and read_marking(acquired).derived
    combined, warning = series_marking([read_marking(acquired), read_marking(by_code)])
    assert combined.synthetic and "1 of 2" in warning


def test_malformed_marking_values_do_not_raise():
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    elements = {
        Tag(0x0008001C): RawDataElement(Tag(0x0008001C), "CS", 2, b"\xff\xfe", 0, False, True),
        Tag(0x00080008): RawDataElement(Tag(0x00080008), "CS", 0, b"", 0, False, True),
        Tag(0x00089215): RawDataElement(Tag(0x00089215), "SQ", 4, b"\x01\x02\x03\x04", 0, False, True),
    }
    dataset = Dataset(elements)
    assert not read_marking(dataset).synthetic


def test_contributing_equipment_alone_marks_a_file_on_the_fast_header_path(tmp_path):
    # Explicit VR little endian (the fast reader's syntax), the newer attributes dropped.
    paths = write_derived_series(small_synthetic_volume(), tmp_path / "s")
    for path in paths:
        dataset = pydicom.dcmread(path)
        for keyword in ("SyntheticData", "DerivationDescription", "DerivationCodeSequence"):
            delattr(dataset, keyword)
        equipment = Dataset()
        equipment.Manufacturer = "SynthView"
        equipment.ContributionDescription = "Synthesized by mr-t1-denoise 1.0.0 (denoising)"
        dataset.ContributingEquipmentSequence = Sequence([equipment])
        dataset.save_as(path)
    (series,) = scan(tmp_path / "s").all_series()
    assert series.synthetic
    assert load_volume(tmp_path / "s").provenance.plugin_name == "mr-t1-denoise"
