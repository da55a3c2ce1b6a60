"""What the operator and its pods agree on, spelled once for both sides.

The controller runs two programs in pods, `faiss-operator build` and `faiss-operator serve`, and
talks to them through a termination message, files and HTTP. Each side used to spell its half
and tests held the halves together; now both import the one spelling here:

- build_report.py: the JSON report a build container leaves as its termination message, and
  its size limit;
- serving_http.py: the serving pod's port name, HTTP paths and headers;
- artifact_manifest.py: the artifact's manifest.json (what the index is, the checksum of every
  file), written once by the build and checked by every reader;
- pod_args.py: every flag a pod is given (`build`, `serve`, `download`, `delete-artifact`),
  declared once: written by the controller from one dataclass, parsed back by the same, and
  added to each program's own parser;
- pod_logs.py: the pod programs' --log-level flag and log line format.

It sits below controller, builder and server and imports none of them (.importlinter).
"""
