"""Customer documents: opened only in the sandboxed worker, stored once by content; and text in any
script in the PDFs the program draws."""
