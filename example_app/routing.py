"""The support line's routing rules: departments by keyword, VIP callers to the PBX."""

from __future__ import annotations

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


@transfers.on_request(when=lambda call: bool(call.arguments))
def by_tool_argument(call: TransferRequest) -> str | None:
    """Tool calls (Vapi and VoiceDock) name the department the assistant chose."""
    department = call.arguments.get("department")
    if isinstance(department, str) and department.lower() in KEYWORDS:
        return department.lower()
    return None


@transfers.on_request
def by_keyword(call: TransferRequest) -> str | None:
    text = call.text.lower()
    for department, words in KEYWORDS.items():
        if any(word in text for word in words):
            return department
    if "complaint" in text:
        refuse("I'm sorry, complaints are handled in writing. I'll send you the address by text.")
    return None
