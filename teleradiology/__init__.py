"""The remote diagnosis service: DICOM and ECG in, routed reading, reports back to the clinic."""
