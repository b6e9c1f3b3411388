"""De-identification that holds: the whole PS3.15 Annex E table, deterministic pseudonyms,
SR/SEG references that resolve, Burned In Annotation, and the free text around the objects."""

from __future__ import annotations

import dataclasses
import os
import stat

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from app.io.deidentify import ANNEX_E_ACTIONS, annex_e_action, deidentify_dataset
from app.io.dicom_export import ExportError, write_derived_series
from app.io.dicom_provenance import JSON_TAG
from app.io.identifiers import KnownIdentifiers
from app.io.loader import load_volume
from app.io.pseudonym_uids import SecretError, UidPseudonyms, installation_secret
from tests.io.export_helpers import source_header, synthetic_mr_volume

SENTINEL = "PHI"


def _value(vr: str, index: int):
    return {
        "UI": f"1.2.826.0.1.3680043.9.{index}",
        "DA": "20240105",
        "TM": "101500",
        "DT": "20240105101500",
        "PN": f"{SENTINEL}^PERSON{index}",
        "AS": "061Y",
        "DS": "1.5",
        "IS": "7",
        "CS": f"{SENTINEL}CODE",
        "UR": "http://phi.example/x",
        "AT": Tag(0x00100010),
    }.get(vr, f"{SENTINEL} text {index}" if vr in ("LO", "LT", "SH", "ST", "UT", "UC") else None)


def _item(index: int) -> Dataset:
    item = Dataset()
    item.PatientName = f"{SENTINEL}^NESTED{index}"
    item.ReferencedSOPClassUID = MRImageStorage
    item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.9{index}"
    item.TextValue = f"{SENTINEL} nested note"
    return item


def every_annex_e_attribute() -> tuple[Dataset, dict[int, str]]:
    """A dataset holding every attribute of the table that pydicom's dictionary knows."""
    dataset = Dataset()
    included: dict[int, str] = {}
    for index, (tag, action) in enumerate(sorted(ANNEX_E_ACTIONS.items())):
        if tag >> 16 in (0x0000, 0x0002):
            continue  # command set / file meta: not in a stored data set
        try:
            vr = dictionary_VR(tag).split(" ")[0]
        except KeyError:
            continue
        if vr == "SQ":
            value = Sequence([_item(index)])
        elif vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
            value = b"PHI!"
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
            value = 7
        else:
            value = _value(vr, index)
            if value is None:
                continue
        dataset.add_new(tag, vr, value)
        included[tag] = action
    dataset.add_new(0x00091010, "LO", f"{SENTINEL} private")
    dataset.add_new(0x60004000, "LT", f"{SENTINEL} overlay comment")  # a masked (60xx) entry
    dataset.SOPClassUID = MRImageStorage
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = MRImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return dataset, included


def test_a_file_with_every_annex_e_attribute_is_de_identified(tmp_path):
    dataset, included = every_annex_e_attribute()
    assert len(included) > 550  # the whole table, not a hand list
    path = tmp_path / "all.dcm"
    dataset.save_as(path, enforce_file_format=True)
    original = pydicom.dcmread(path)
    uid_map: dict[str, str] = {}
    cleaned = deidentify_dataset(pydicom.dcmread(path), uid_map)
    cleaned.save_as(tmp_path / "clean.dcm", enforce_file_format=True)
    cleaned = pydicom.dcmread(tmp_path / "clean.dcm")
    for tag, action in included.items():
        name = f"{keyword_for_tag(tag)} ({action})"
        before = original[tag]
        if action == "X" or (action in ("X/Z", "X/D", "X/Z/D") and tag not in cleaned):
            assert tag not in cleaned, name
            continue
        assert tag in cleaned, name
        after = cleaned[tag]
        if action == "U":
            assert after.value != before.value and str(after.value).startswith("2.25."), name
        elif action == "Z" and keyword_for_tag(tag) != "PatientName":
            assert after.value in (None, "", b"") or (after.VR == "SQ" and len(after.value) == 0), name
        elif after.VR != "SQ":
            assert after.value != before.value, name
    for element in cleaned.iterall():
        if element.VR in ("LO", "LT", "SH", "ST", "UT", "UC", "PN", "CS", "UR"):
            assert SENTINEL.lower() not in str(element.value).lower(), element
    assert not any(element.tag.is_private for element in cleaned.iterall())
    assert 0x60004000 not in cleaned
    for keyword in ("ImageComments", "ProtocolName", "SeriesDescription", "PerformedProcedureStepDescription",
                    "RequestedProcedureDescription", "ReferringPhysicianIdentificationSequence"):  # fmt: skip
        assert keyword not in cleaned or not cleaned[keyword].value, keyword
    assert cleaned.InstanceCreatorUID == uid_map[original.InstanceCreatorUID]
    # A reference sequence (X/Z/U*) is kept with its UIDs replaced: references still resolve.
    reference = cleaned.SourceImageSequence[0].ReferencedSOPInstanceUID
    assert reference == uid_map[original.SourceImageSequence[0].ReferencedSOPInstanceUID]
    assert cleaned.file_meta.MediaStorageSOPInstanceUID == cleaned.SOPInstanceUID
    assert cleaned.LongitudinalTemporalInformationModified == "REMOVED"
    assert cleaned.PatientIdentityRemoved == "YES"


def test_masked_table_entries_apply_to_repeating_groups():
    assert annex_e_action(0x60024000) == "X" and annex_e_action(0x50100000) is not None
    assert annex_e_action(0x00280010) is None  # Rows: not in the table


def test_pseudonyms_are_deterministic_idempotent_and_keyed(tmp_path):
    first, second = UidPseudonyms(b"k" * 32), UidPseudonyms(b"k" * 32)
    uid = generate_uid()
    assert first(uid) == second(uid) != uid
    assert first(first(uid)) == first(uid)  # a pseudonym is not mapped again
    assert UidPseudonyms(b"x" * 32)(uid) != first(uid)
    assert len(first(uid)) <= 64 and pydicom.uid.UID(first(uid)).is_valid


def test_installation_secret_is_private_and_stable(tmp_path):
    secret = installation_secret(tmp_path)
    path = tmp_path / "deidentify.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert installation_secret(tmp_path) == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not hex")
    with pytest.raises(SecretError, match="damaged"):
        installation_secret(tmp_path)


def test_default_secret_lives_in_the_configured_folder():
    folder = os.environ["SYNTHVIEW_CONFIG_DIR"]  # tests/conftest.py: never the user's own
    deidentify_dataset(source_header())
    assert os.path.exists(os.path.join(folder, "deidentify.key"))


def test_two_exports_of_one_study_stay_one_study(tmp_path):
    header = source_header()
    kwargs = {"source": header, "keep_study_uid": True, "deidentify": True}
    first = pydicom.dcmread(write_derived_series(synthetic_mr_volume(), tmp_path / "a", **kwargs)[0])
    second = pydicom.dcmread(write_derived_series(synthetic_mr_volume(), tmp_path / "b", **kwargs)[0])
    assert first.StudyInstanceUID == second.StudyInstanceUID != header.StudyInstanceUID
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID != header.FrameOfReferenceUID
    assert first.SeriesInstanceUID != second.SeriesInstanceUID


def test_burned_in_annotation_is_refused_unless_allowed(tmp_path):
    header = source_header()
    header.BurnedInAnnotation = "YES"
    with pytest.raises(ExportError, match="Burned In Annotation YES"):
        write_derived_series(synthetic_mr_volume(), tmp_path / "no", source=header, deidentify=True)
    assert not (tmp_path / "no").exists() or not any((tmp_path / "no").iterdir())
    paths = write_derived_series(
        synthetic_mr_volume(), tmp_path / "yes", source=header, deidentify=True, allow_burned_in=True
    )
    dataset = pydicom.dcmread(paths[0])
    assert dataset.BurnedInAnnotation == "YES" and dataset.PatientIdentityRemoved == "YES"


def test_known_identifiers_are_scrubbed_from_free_text():
    header = source_header()  # DOE^JANE, PID-998877, ACC-31337, born 19610203, HOUSE^GREGORY
    known = KnownIdentifiers.of(header)
    scrubbed = known.scrub("Jane Doe lesion; MRN PID-998877 acc ACC-31337 dob 03.02.1961 (Dr House) anecdote")
    for leaked in ("Jane", "Doe", "PID-998877", "ACC-31337", "03.02.1961", "House"):
        assert leaked.lower() not in scrubbed.lower(), scrubbed
    assert "lesion" in scrubbed and "anecdote" in scrubbed
    assert KnownIdentifiers.of(None).scrub("DOE") == "DOE"


def test_series_description_given_by_the_caller_is_scrubbed(tmp_path):
    paths = write_derived_series(
        synthetic_mr_volume(), tmp_path / "s", source=source_header(), deidentify=True,
        series_description="T2 of DOE JANE",
    )  # fmt: skip
    assert "DOE" not in pydicom.dcmread(paths[0]).SeriesDescription


def test_the_synthetic_marking_survives_de_identification(tmp_path):
    paths = write_derived_series(
        synthetic_mr_volume(), tmp_path / "s", source=source_header(), deidentify=True
    )
    dataset = pydicom.dcmread(paths[0])
    assert dataset.SyntheticData == "YES" and dataset.SeriesDescription.startswith("SYNTHETIC")
    assert dataset.DerivationDescription.startswith("Synthesized by pix2pix-t1t2 1.2.0")
    assert "date removed" in dataset.DerivationDescription
    assert np.all([c.CodingSchemeDesignator for c in dataset.DerivationCodeSequence])


def test_the_provenance_record_survives_de_identification_without_dates_or_names(tmp_path):
    volume = synthetic_mr_volume()
    volume.provenance = dataclasses.replace(
        volume.provenance, source_description="T1 of DOE JANE", parameters={"note": "for Jane Doe"}
    )
    paths = write_derived_series(volume, tmp_path / "s", source=source_header(), deidentify=True)
    record = pydicom.dcmread(paths[0])[JSON_TAG].value
    for leaked in ("DOE", "Jane", volume.provenance.created_utc):
        assert leaked.lower() not in record.lower(), leaked
    loaded = load_volume(tmp_path / "s").provenance
    assert (loaded.plugin_name, loaded.weights_sha256) == ("pix2pix-t1t2", "ab" * 32)  # the whole hash
    assert loaded.created_utc == "" and loaded.source_description == "(removed: de-identified export)"
    assert loaded.parameters == {"note": "for [removed] [removed]"}


def test_scrubbing_keeps_name_prefixes_and_short_numbers():
    header = Dataset()
    header.PatientName = "DOE^JANE^A^MRS^JR"
    header.StudyID = "12"  # a short number: measurements would lose it
    header.PatientID = "0012345"
    scrubbed = KnownIdentifiers.of(header).scrub("Jane Doe: MR head, lesion 12 mm (MRS protocol), id 0012345")
    assert scrubbed == "[removed] [removed]: MR head, lesion 12 mm (MRS protocol), id [removed]"
