// Placeholder: filled in by the metrics family work.
