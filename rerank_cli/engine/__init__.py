"""(query, document) pairs -> scores: tokenizing, batching, onnxruntime. Knows arrays, never files or terminals."""
