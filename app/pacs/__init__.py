"""DICOM networking: query, retrieve and send studies over DIMSE (pynetdicom) and DICOMweb
(dicomweb-client). No Qt; the viewer's Query/Retrieve dialog and the ``pacs`` CLI both call it."""
