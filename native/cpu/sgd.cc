// Placeholder: filled in by the sgd family work.
