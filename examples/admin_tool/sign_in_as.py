"""Your admin tool's "Sign in as" button, through actas (RFC 8693 token exchange).

The tool holds a credential of its own, created by an owner in the dashboard
(*Admin tools*) or with ``actas machines create``; never the Backend API's secret key.
It exchanges the user's id for a ticket and sends the operator's browser to the
ticket's ``url``, which opens the application as the user, with the operator in the
session token's ``act``. The policy, the user's consent, approvals and the audit log
apply exactly as when the operator clicks *Impersonate user* in the dashboard.

    python -m examples.admin_tool.sign_in_as --actas http://localhost:4000 \\
        --client-id mc_… --client-secret mcs_… --user user_… \\
        --operator op_… --reason "Ticket #90: the cart is empty"
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105  (a URN)
USER_ID = "urn:actas:params:oauth:token-type:user_id"
OPERATOR_ID = "urn:actas:params:oauth:token-type:operator_id"


class Refused(Exception):
    """actas said no (RFC 6749 §5.2: ``error`` and a sentence for the operator)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


def sign_in_as(actas_url: str, client_id: str, client_secret: str, *, user_id: str,
               reason: str, operator_id: str | None = None, mode: str = "read_only",
               minutes: int = 30) -> str:
    """The address that opens the application as ``user_id``, for the operator
    ``operator_id`` (their role applies too), or raise ``Refused``."""
    form = {"grant_type": TOKEN_EXCHANGE, "subject_token": user_id,
            "subject_token_type": USER_ID, "reason": reason, "mode": mode,
            "duration": str(minutes * 60)}
    if operator_id:
        form |= {"actor_token": operator_id, "actor_token_type": OPERATOR_ID}
    answer = httpx.post(f"{actas_url}/oauth/token", data=form,
                        auth=(client_id, client_secret), timeout=30)
    body = answer.json()
    if answer.status_code != 200:
        raise Refused(body.get("error", "error"), body.get("error_description", ""))
    url: str = body["url"]
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actas", default="http://localhost:4000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", default=os.environ.get("ACTAS_CLIENT_SECRET"))
    parser.add_argument("--user", required=True, help="the user's id (user_…)")
    parser.add_argument("--operator", help="the operator the tool acts for (op_…)")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--full", action="store_true", help="a full impersonation")
    args = parser.parse_args()
    if not args.client_secret:
        parser.error("--client-secret or ACTAS_CLIENT_SECRET is required")
    try:
        print(sign_in_as(args.actas, args.client_id, args.client_secret, user_id=args.user,
                         reason=args.reason, operator_id=args.operator,
                         mode="full" if args.full else "read_only"))
    except Refused as refused:
        sys.exit(f"actas refused: {refused}")


if __name__ == "__main__":
    main()
