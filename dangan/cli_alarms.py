"""``dangan alarms listen``: a webhook receiver to try the alarm webhook with.

It checks each delivery as a real receiver should (``verify_signature``: the HMAC of
timestamp and body under the secret, and a recent timestamp), prints the alert, and
answers 204 — or 401 to a delivery whose signature does not check, which the sender
then retries. For trying a set-up and for the walkthrough; a security team's own
receiver does the same check (README, "Alarms").
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
import uvicorn
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dangan.alarms.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

alarms_app = typer.Typer(help="Access alarms: try the webhook.", no_args_is_help=True)
console = Console()


def receiver(secret: str) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not verify_signature(secret, timestamp, body, signature):
            console.print("[red]refused a delivery: its signature does not check[/red]")
            return Response(status_code=401)
        payload = orjson.loads(body)
        alert = payload.get("alert", {})
        console.print(
            f"[bold]{payload.get('event')}[/bold] tenant {payload.get('tenant')}:"
            f" alert {alert.get('id')} {alert.get('rule')} ({alert.get('severity')})"
            f" — {alert.get('summary')}"
        )
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


@alarms_app.command("listen")
def listen(
    secret: Annotated[str, typer.Option(help="The webhook secret deliveries are signed with")],
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1)")] = 8765,
) -> None:
    """Receive alert deliveries on http://127.0.0.1:PORT/, check them, print them."""
    console.print(f"listening on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    uvicorn.run(receiver(secret), host="127.0.0.1", port=port, log_level="warning")
