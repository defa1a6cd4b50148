"""The platform contract kit against the Twilio adapter, found through its entry point."""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET

from twilio_support import FORM
from twilio_support import TOKEN
from twilio_support import encode
from twilio_support import fields
from twilio_support import handoff
from twilio_support import signature
from werkzeug.datastructures import Headers

from flask_calltransfer import testing

#: The verbs a <Response> may hold, from Twilio's TwiML reference.
VERBS = {"Say", "Play", "Dial", "Hangup", "Pause", "Redirect", "Reject", "Gather", "Connect", "Enqueue"}


class TestTwilioContract(testing.PlatformContract):
    platform = "twilio"
    config: t.ClassVar[dict[str, t.Any]] = {"CALLTRANSFER_TWILIO_AUTH_TOKEN": TOKEN}

    def transfer_request(self, text: str) -> testing.WebhookRequest:
        return encode(handoff(text, caller=self.caller)), dict(FORM)

    def other_event(self) -> testing.WebhookRequest:
        return encode(
            fields(CallStatus="in-progress", DialCallStatus="busy", DialCallSid="CA" + "3" * 32)
        ), dict(FORM)

    def sign(self, body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
        return {**headers, "X-Twilio-Signature": signature(body, url)}

    def bad_bodies(self) -> dict[str, bytes]:
        return {
            **super().bad_bodies(),
            "no CallSid": encode({"From": "+31612345678", "CallStatus": "ringing"}),
            "CallSid twice": encode([("CallSid", "CA1"), ("CallSid", "CA2"), ("CallStatus", "ringing")]),
            "From twice": encode([*fields().items(), ("From", "+31612345679")]),
            "HandoffData twice": encode([*handoff().items(), ("HandoffData", "{}")]),
        }

    def answer_problems(self, status: int, headers: Headers, body: bytes) -> list[str]:
        if status != 200:
            return [f"Twilio runs TwiML from a 200 answer, not {status}."]
        if headers.get("Content-Type", "").split(";")[0] not in ("text/xml", "application/xml"):
            return ["Twilio reads TwiML only as text/xml or application/xml."]
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            return [f"The answer is not well-formed XML: {exc}."]
        if root.tag != "Response":
            return ["TwiML's root element is <Response>."]
        problems = [f"<{verb.tag}> is not a TwiML verb." for verb in root if verb.tag not in VERBS]
        for dial in root.iter("Dial"):
            nouns = [noun for noun in dial if noun.tag in ("Number", "Sip")]
            if len(nouns) != 1 or not (nouns[0].text or "").strip():
                problems.append("A <Dial> holds one <Number> or <Sip> with its target.")
        for say in root.iter("Say"):
            if not (say.text or "").strip():
                problems.append("A <Say> has a sentence to say.")
        return problems
