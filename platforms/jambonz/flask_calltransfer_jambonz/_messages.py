"""Every sentence the jambonz adapter writes to a user: configuration errors, verification details
(for the log only: the 401 body is fixed), payload errors and unsupported destinations."""

from __future__ import annotations


def secret_missing(key: str) -> str:
    return (
        f"The jambonz platform is enabled but {key} is not set. Set it to the account's webhook secret"
        " (wh_secret_..., shown in the jambonz portal under Account, or read with"
        " GET /v1/Accounts/{account_sid}/WebhookSecret), or a list of secrets while you rotate it;"
        " or remove jambonz from CALLTRANSFER_PLATFORMS. (CALLTRANSFER_VERIFY_REQUESTS = False"
        " disables verification, for local development only.)"
    )


def secret_invalid(key: str, value: object) -> str:
    return (
        f"{key} must be the webhook secret as a string, or a list of non-empty strings while you"
        f" rotate it, not {type(value).__name__}. Copy the wh_secret_... value from the jambonz portal."
    )


def seconds_invalid(key: str, value: object, *, optional: bool) -> str:
    allowed = (
        "a positive number of seconds, or None for jambonz's default" if optional else "a positive number"
    )
    return f"{key} must be {allowed}, not {value!r}. Set it to a number such as 30."


def text_invalid(key: str, value: object) -> str:
    return (
        f"{key} must be a non-empty string on one line, or None, not {value!r}. Set it to the value"
        " jambonz should dial with, or leave it unset."
    )


def caller_name_quoted(what: str) -> str:
    return (
        "jambonz writes callerName into the SIP From header's quoted display name as it is, so it"
        f' cannot hold a double quote (") or a backslash. Leave them out of {what}.'
    )


def signature_missing(header: str) -> str:
    return (
        f"The {header} header is missing. jambonz signs every HTTP webhook with it; a request without"
        " it did not come from jambonz, or came through a proxy that drops the header."
    )


def signature_malformed(header: str, problem: str) -> str:
    return f"The {header} header is not of the form t=<unix seconds>,v1=<hex>: {problem}."


def signature_mismatch(header: str) -> str:
    return (
        f"No v1 signature in {header} matches the body under any configured secret. Check that"
        " CALLTRANSFER_JAMBONZ_SECRET is the account's current webhook secret, and that nothing"
        " between jambonz and the app rewrites the body."
    )


def timestamp_outside(header: str, age: float, limit: float) -> str:
    when = "in the future" if age < 0 else "old"
    return (
        f"The timestamp in {header} is {abs(age):.0f} s {when}, outside the {limit:.0f} s window of"
        " CALLTRANSFER_JAMBONZ_MAX_AGE. Check the clocks of the jambonz server and of this host"
        " (NTP), or widen the window."
    )


def payload_invalid() -> str:
    return "The jambonz payload has fields of the wrong type; see 'errors' for each field."


def no_call_sid() -> str:
    return (
        "The jambonz payload has no call_sid, so it belongs to no call. Point only the application's"
        " call_hook, call_status_hook and verb actionHooks at this URL: the llm verb's toolHook and"
        " other hooks without call fields need a route of their own."
    )


def sip_verb_bye() -> str:
    return (
        "jambonz cannot carry transfer_plan.sip_verb='bye'. Use sip_verb='refer' (the sip:refer verb)"
        " or sip_verb='dial' (the dial verb) for jambonz requests, or check call.platform in your"
        " handler."
    )


def event_reply_invalid(reply: object) -> str:
    return (
        "An on_event handler for jambonz must return one verb object (a dict with a 'verb' key), or"
        f" {{'verbs': [verb, ...]}}, or None; it returned {type(reply).__name__} {sorted(reply)!r}."
        if isinstance(reply, dict)
        else f"An on_event handler for jambonz returned {type(reply).__name__}; return a dict or None."
    )
