// Placeholder: filled in by the dropout family work.
