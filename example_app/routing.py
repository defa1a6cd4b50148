"""The support line's routing rules: VIP callers to the PBX, departments by tool argument or
keyword, and technical support only in office hours (Amsterdam time), with voicemail after."""

from __future__ import annotations

import datetime
import os
import zoneinfo

from flask_calltransfer import CallTransfer
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
    "support-voicemail",
    NumberDestination("+31 20 794 8499", message="Support is closed now; please leave a message."),
)
transfers.add_destination(
    "reception",
    NumberDestination("+31 20 794 8400", message="Connecting you to our reception."),
)

#: Callers who go straight to the account managers' PBX, with their account number attached.
VIP_CALLERS = {"+31612345678": "ACME-0042"}

KEYWORDS = {
    "sales": ("sales", "price", "quote", "buy"),
    "billing": ("billing", "invoice", "payment", "refund"),
    "support": ("support", "broken", "error", "not working"),
}


@transfers.on_request(platform="vapi", when=lambda call: call.caller in VIP_CALLERS)
def vip(call: TransferRequest) -> SipDestination:
    account = VIP_CALLERS[call.caller or ""]
    return SipDestination(
        "sip:accounts@pbx.example.com",
        headers={"X-Account": account},
        message="One moment, your account manager will be right with you.",
    )


#: Technical support is staffed on weekdays in these hours; ``SUPPORT_LINE_HOURS=always`` opens it
#: round the clock (the end-to-end tests use that).
OFFICE = zoneinfo.ZoneInfo("Europe/Amsterdam")
OPENING, CLOSING = datetime.time(8, 0), datetime.time(18, 0)
VOICEMAIL = "support-voicemail"


def support_is_open(now: datetime.datetime | None = None) -> bool:
    if os.environ.get("SUPPORT_LINE_HOURS") == "always":
        return True
    local = (now or datetime.datetime.now(tz=OFFICE)).astimezone(OFFICE)
    return local.weekday() < 5 and OPENING <= local.time() < CLOSING


def staffed(department: str) -> str:
    """The department, or the support voicemail when technical support is closed."""
    if department == "support" and not support_is_open():
        return VOICEMAIL
    return department


@transfers.on_request(when=lambda call: bool(call.arguments))
def by_tool_argument(call: TransferRequest) -> str | None:
    """Tool calls (Vapi and VoiceDock) name the department the assistant chose."""
    department = call.arguments.get("department")
    if isinstance(department, str) and department.lower() in KEYWORDS:
        return staffed(department.lower())
    return None


@transfers.on_request
def by_keyword(call: TransferRequest) -> str | None:
    text = call.text.lower()
    for department, words in KEYWORDS.items():
        if any(word in text for word in words):
            return staffed(department)
    if "complaint" in text:
        refuse("I'm sorry, complaints are handled in writing. I'll send you the address by text.")
    return None
