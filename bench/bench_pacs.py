"""Retrieval speed against a local Orthanc, in one run (ratios: this machine is noisy).

    .venv/bin/python bench/bench_pacs.py [--slices 400] [--size 512] [--repeat 2]

Starts a test Orthanc (Debian orthanc + orthanc-dicomweb) on free ports, uploads a synthetic CT
series of SLICES x SIZE x SIZE int16 slices, then retrieves it, alternating, REPEAT times each:
SynthView's C-GET (app.pacs, into a folder) against dcmtk's getscu on the same server, and
SynthView's WADO-RS against a plain HTTP download of the same WADO-RS multipart response. Prints
the best time of each and the ratios SynthView / reference. Target: C-GET within 1.2x of getscu.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_series(folder: Path, slices: int, size: int) -> str:
    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(0)
    base = rng.integers(-1000, 1500, (size, size), dtype=np.int16)
    folder.mkdir(parents=True)
    for k in range(slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.Modality = CTImageStorage, "CT"
        ds.PatientID, ds.PatientName = "BENCH", "Bench^CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.InstanceNumber, ds.ImagePositionPatient = k + 1, [0, 0, k * 0.625]
        ds.ImageOrientationPatient, ds.PixelSpacing, ds.SliceThickness = [1, 0, 0, 0, 1, 0], [0.7, 0.7], 0.625
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.roll(base, k, axis=0).tobytes()
        ds.save_as(folder / f"CT{k:04d}.dcm", enforce_file_format=True)
    return study


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=400, help="slices in the CT series (default 400)")
    parser.add_argument("--size", type=int, default=512, help="rows = columns (default 512)")
    parser.add_argument("--repeat", type=int, default=2, help="timed retrievals of each kind (default 2)")
    args = parser.parse_args(argv)

    import requests

    from app.pacs.dimse import get as cget
    from app.pacs.nodes import Node, PacsConfig
    from app.pacs.web import get as wado_get
    from tests.pacs.orthanc import Orthanc, available, free_port

    if not available() or not shutil.which("getscu"):
        print("needs Orthanc (orthanc, orthanc-dicomweb) and dcmtk's getscu: bash scripts/install.sh")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-pacs-") as tmp:
        tmp = Path(tmp)
        server = Orthanc(tmp / "orthanc", free_port(), free_port(), "BENCH", free_port()).start()
        try:
            study = make_series(tmp / "series", args.slices, args.size)
            server.upload(sorted((tmp / "series").glob("*.dcm")))
            config = PacsConfig(ae_title="BENCH")
            dimse = Node("orthanc", "dimse", ae_title="ORTHANC", host="127.0.0.1", port=server.dicom_port, timeout_s=60)
            web = Node("orthanc-web", "dicomweb", url=server.dicomweb, timeout_s=60)
            times: dict[str, list[float]] = {k: [] for k in ("c-get", "getscu", "wado", "http")}
            for n in range(args.repeat):
                out = tmp / f"out{n}"

                def ours_dimse(out=out):
                    result = cget(dimse, config, study, None, out / "cget")
                    assert result.done == args.slices, result

                def getscu(out=out):
                    (out / "getscu").mkdir(parents=True)
                    subprocess.run(["getscu", "-aet", "BENCH", "-aec", "ORTHANC", "-S", "-k", "QueryRetrieveLevel=STUDY",
                                    "-k", f"StudyInstanceUID={study}", "-od", str(out / "getscu"), "127.0.0.1",
                                    str(server.dicom_port)], check=True, capture_output=True)  # fmt: skip
                    assert len(list((out / "getscu").iterdir())) == args.slices

                def ours_web(out=out):
                    result = wado_get(web, study, None, out / "wado")
                    assert result.done == args.slices, result

                def plain_http(out=out):
                    response = requests.get(f"{server.dicomweb}/studies/{study}",
                                            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                                            timeout=120)  # fmt: skip
                    response.raise_for_status()
                    (out / "http.bin").write_bytes(response.content)

                times["c-get"].append(timed(ours_dimse))
                times["getscu"].append(timed(getscu))
                times["wado"].append(timed(ours_web))
                times["http"].append(timed(plain_http))
                shutil.rmtree(out)
        finally:
            server.remove()
    mb = args.slices * args.size * args.size * 2 / 2**20
    best = {k: min(v) for k, v in times.items()}
    print(f"series: {args.slices} slices {args.size}x{args.size} int16 ({mb:.0f} MiB of pixels), best of {args.repeat}")
    print(f"C-GET  SynthView {best['c-get']:.2f} s, dcmtk getscu {best['getscu']:.2f} s: ratio {best['c-get'] / best['getscu']:.2f} (target <= 1.2)")
    print(f"WADO-RS SynthView {best['wado']:.2f} s, plain HTTP download {best['http']:.2f} s: ratio {best['wado'] / best['http']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
