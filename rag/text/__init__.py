"""Text handling shared by indexing and prompting: chunking, tables, sections, delimiters."""
