"""Customer documents: opened only in the sandboxed worker process (the sandbox, the worker process it
runs, the shared sandbox's functions, what they answer, and the media type from a file's first bytes),
stored once by content; and text in any script in the PDFs the program draws."""
