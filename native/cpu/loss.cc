// Placeholder: filled in by the loss family work.
