// Placeholder: filled in by the lrn family work.
