"""Reading a build's inputs — embeddings, ids and metadata — from a URI, validated before any work.

`load_dataset` is the entry point; `errors` holds one exception class per way the input can be
wrong, so that the build Job can map each to its own exit code.
"""
