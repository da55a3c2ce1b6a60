"""What the operator and its pods agree on, spelled once for both sides.

The controller runs two programs in pods, `faiss-operator build` and `faiss-operator serve`, and
talks to them through a termination message, files and HTTP. Each side used to spell its half
and tests held the halves together; now both import the one spelling here:

- build_report.py: the JSON report a build container leaves as its termination message, and
  its size limit;
- serving_http.py: the serving pod's port name, HTTP paths and headers;
- pod_args.py: the command lines of `build` and `serve`, written from one dataclass and parsed
  back by the same.

It sits below controller, builder and server and imports none of them (.importlinter).
"""
