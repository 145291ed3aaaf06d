"""ECG as pure functions: format readers, signal processing, measurements, rendering."""
