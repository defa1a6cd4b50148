"""The support line's routing rules: VIP callers to the PBX, departments by tool argument or
keyword, technical support in office hours (Amsterdam time, engineers taking turns), with
voicemail after, and the accounts team as a hunt group: the desk takes two calls at once, a
colleague the next, reception the rest, and whoever is marked away is skipped."""

from __future__ import annotations

import datetime
import os
import pathlib

from flask_calltransfer import BusinessHours
from flask_calltransfer import CallTransfer
from flask_calltransfer import Destination
from flask_calltransfer import DestinationChain
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse

transfers = CallTransfer()

transfers.add_destination(
    "sales",
    NumberDestination(
        "+31 20 794 8450", message="Connecting you to sales.", description="Pricing and quotes"
    ),
)
transfers.add_destination(
    "billing",
    NumberDestination("+31 20 794 8451", message="Connecting you to billing.", description="Invoices"),
)
transfers.add_destination(
    "support",
    NumberDestination(
        "+31 20 794 8452", message="Connecting you to technical support.", description="Faults"
    ),
)
transfers.add_destination(
    "support-2",
    NumberDestination(
        "+31 20 794 8453", message="Connecting you to technical support.", description="Faults"
    ),
)
transfers.add_destination(
    "support-voicemail",
    NumberDestination("+31 20 794 8499", message="Support is closed now; please leave a message."),
)
transfers.add_destination(
    "reception",
    NumberDestination("+31 20 794 8400", message="Connecting you to our reception."),
)

transfers.add_destination(
    "accounts-desk",
    NumberDestination("+31 20 794 8460", message="Connecting you to the accounts desk."),
    max_concurrent=2,
)
transfers.add_destination(
    "accounts-2",
    NumberDestination("+31 20 794 8461", message="Connecting you to a colleague from accounts."),
)

#: The accounts team: tried in order for each call, the next when a transfer fails (busy, no
#: answer), skipping the desk while it has two calls and anyone marked away.
ACCOUNTS = DestinationChain(
    ["accounts-desk", "accounts-2", "reception"],
    name="accounts",
    message="They could not take your call; let me try a colleague.",
)


@transfers.availability
def present(destination: Destination, call: TransferRequest) -> bool:
    """Who is away, as the presence system exports it: directory names, one per line, in the file
    ``SUPPORT_LINE_AWAY`` names (read on every check, so a change counts at once)."""
    path = os.environ.get("SUPPORT_LINE_AWAY")
    if not path or destination.directory_name is None:
        return True
    try:
        away = pathlib.Path(path).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return True
    return destination.directory_name not in away


#: Callers who go straight to the account managers' PBX, with their account number attached.
VIP_CALLERS = {"+31612345678": "ACME-0042"}

KEYWORDS = {
    "sales": ("sales", "price", "quote", "buy"),
    "billing": ("billing", "invoice", "payment", "refund"),
    "support": ("support", "broken", "error", "not working"),
    "accounts": ("account", "contract"),
}


@transfers.on_request(platform="vapi", when=lambda call: call.caller in VIP_CALLERS)
def vip(call: TransferRequest) -> SipDestination:
    account = VIP_CALLERS[call.caller or ""]
    return SipDestination(
        "sip:accounts@pbx.example.com",
        headers={"X-Account": account},
        message="One moment, your account manager will be right with you.",
    )


#: Technical support is staffed on weekdays, Amsterdam time, except on public holidays;
#: ``SUPPORT_LINE_HOURS=always`` opens it round the clock (the end-to-end tests use that).
SUPPORT_HOURS = BusinessHours(
    {"mon-fri": "08:00-18:00"},
    timezone="Europe/Amsterdam",
    holidays=["2026-12-25", "2026-12-26", "2027-01-01"],
)
#: Two support engineers take turns, across every worker, through the app's store.
SUPPORT_DESK = transfers.pool("support", ["support", "support-2"])
VOICEMAIL = "support-voicemail"


def support_is_open(now: datetime.datetime | None = None) -> bool:
    return os.environ.get("SUPPORT_LINE_HOURS") == "always" or SUPPORT_HOURS.is_open(now)


def staffed(department: str) -> str | DestinationChain:
    """The department; for support, the engineer whose turn it is, or voicemail after hours; for
    accounts, the team's hunt group."""
    if department == "accounts":
        return ACCOUNTS
    if department != "support":
        return department
    if not support_is_open():
        return VOICEMAIL
    return str(SUPPORT_DESK.next())


@transfers.on_request(when=lambda call: bool(call.arguments))
def by_tool_argument(call: TransferRequest) -> str | DestinationChain | None:
    """Tool calls (Vapi and VoiceDock) name the department the assistant chose."""
    department = call.arguments.get("department")
    if isinstance(department, str) and department.lower() in KEYWORDS:
        return staffed(department.lower())
    return None


@transfers.on_request
def by_keyword(call: TransferRequest) -> str | DestinationChain | None:
    text = call.text.lower()
    for department, words in KEYWORDS.items():
        if any(word in text for word in words):
            return staffed(department)
    if "complaint" in text:
        refuse("I'm sorry, complaints are handled in writing. I'll send you the address by text.")
    return None
