"""`clipgan batch`: many pictures and videos from a jobs file, on local worker processes or Ray actors.

jobs.py parses the file, worker.py runs jobs through clipgan.generate/animate, local.py and
ray_backend.py hand jobs to workers, manifest.py (the driver's) writes outputs, the manifest and
the contact sheet, and run.py ties them together.
"""
