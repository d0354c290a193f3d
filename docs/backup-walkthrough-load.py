"""A read loop for docs/backup-walkthrough.md: east's manager lists 50 customers again
and again for N seconds and counts the answers (.venv/bin/python, which has httpx)."""

import json, sys, time, httpx

d = json.load(open(".dangan/demo-credentials.json"))["tenants"]["east"]
url, token = d["graphql_url"], d["users"]["manager"]["token"]
deadline = time.time() + float(sys.argv[1])
ok = bad = 0
with httpx.Client(timeout=30) as c:
    while time.time() < deadline:
        r = c.post(
            url,
            json={"query": "{ customers(first: 50) { nodes { id name } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code == 200 and not r.json().get("errors"):
            ok += 1
        else:
            bad += 1
print(f"requests during the backup: {ok} ok, {bad} failed")
