// Placeholder: filled in by the linear family work.
