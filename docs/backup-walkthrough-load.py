"""A read loop for docs/backup-walkthrough.md: east's manager lists 50 customers again
and again for N seconds and counts the answers (.venv/bin/python, which has httpx)."""

import json
import sys
import time
from pathlib import Path

import httpx

east = json.loads(Path(".dangan/demo-credentials.json").read_text())["tenants"]["east"]
url, token = east["graphql_url"], east["users"]["manager"]["token"]
deadline = time.time() + float(sys.argv[1])
ok = bad = 0
with httpx.Client(timeout=30) as client:
    while time.time() < deadline:
        reply = client.post(
            url,
            json={"query": "{ customers(first: 50) { nodes { id name } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if reply.status_code == 200 and not reply.json().get("errors"):
            ok += 1
        else:
            bad += 1
print(f"requests during the backup: {ok} ok, {bad} failed")
