"""The build Job's program: read and validate the source, build, evaluate, write the artifact.

`command` is `faiss-operator build`; `pipeline` the steps; `exit_codes` one code per failure;
`report` the compact termination message the controller reads.
"""
