#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu).
# grade_submission.py needs only Python 3.8+ and its standard library (urllib, json): nothing to
# pip install, and gradient-service's own package is not needed in the image.
set -euo pipefail

if ! command -v python3 >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends python3
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else "grade_submission.py needs Python 3.8+")'
