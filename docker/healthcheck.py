"""Container HEALTHCHECK: exit 0 when GET /healthz on this container's port answers 200.

Standard library only (the image has no curl); the port comes from XNORNET_PORT.
"""

import os
import sys
import urllib.request

port = os.environ.get("XNORNET_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
