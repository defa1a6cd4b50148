"""Every sentence Flask-CallTransfer says to a developer or an operator, in one place.

Each message says what happened and how to fix it. None of them includes a secret, a payload or an
unmasked phone number.
"""

from __future__ import annotations

import re
import typing as t


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _without_password(url: object) -> object:
    # A store URL may carry a password: messages name the URL, never the secret in it. Everything
    # between the user name and the last "@" is masked (a password may hold "/" or "@"), and so
    # is a password given as a query parameter.
    if not isinstance(url, str):
        return url
    scheme, found, rest = url.partition("://")
    if found and "@" in rest:
        userinfo, _, location = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{location}" if colon else f"{userinfo}@{location}"
        url = f"{scheme}://{rest}"
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


# Destinations -------------------------------------------------------------------------------------


def number_empty() -> str:
    return "The phone number is empty. Pass the number to dial, for example '+31612345678'."


def number_needs_region(number: str) -> str:
    return (
        f"The number {_show(number)} has no country code. Write it in international form starting"
        " with '+', pass region='NL' (or your country's code), or set CALLTRANSFER_DEFAULT_REGION."
    )


def number_unparseable(number: str, detail: str) -> str:
    return (
        f"The number {_show(number)} could not be read as a phone number ({detail}). Write it in"
        " international form, for example '+31612345678'."
    )


def number_invalid(number: str) -> str:
    return (
        f"The number {_show(number)} is not a valid phone number for its country. Check the digits,"
        " or pass e164=False for a trunk short code."
    )


def number_non_e164_invalid(number: str) -> str:
    return (
        f"The number {_show(number)} is not allowed without the E.164 check: use 3 to 40 letters or"
        " digits with an optional leading '+'."
    )


def attribute_not_text(what: str, value: object, *, whose: str = "destination") -> str:
    return f"The {whose}'s {what} must be a string, not {type(value).__name__}."


def attribute_empty(what: str, *, whose: str = "destination") -> str:
    return f"The {whose}'s {what} is empty. Give it a value or leave it out."


def attribute_too_long(what: str, limit: int, *, whose: str = "destination") -> str:
    return f"The {whose}'s {what} is longer than {limit} characters. Shorten it."


def config_secret_short(key: str, length: int) -> str:
    return (
        f"{key} must be at least {length} characters long: it signs links that open what the"
        " caller told the assistant. Use a long random value, such as one from"
        " 'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'."
    )


def config_public_url(key: str, value: object) -> str:
    return (
        f"{key} must be the public URL your app is reached at, such as"
        f" 'https://calls.example.com', without a query or fragment; got {value!r}."
    )


def handoff_link_off() -> str:
    return "Hand-off links are off in this app. Set CALLTRANSFER_HANDOFF_SECRET to serve them."


def handoff_link_expired() -> str:
    return "This hand-off link has expired, and what it showed is no longer kept."


def handoff_link_invalid() -> str:
    return "This hand-off link is not valid. Open the link exactly as it came with the call."


def handoff_store_down() -> str:
    return "The hand-off cannot be read right now because the store is unavailable. Try again shortly."


def chain_callback_invalid(value: object) -> str:
    return f"A chain's callback must be a Callback, not {type(value).__name__}."


def callback_message_invalid() -> str:
    return (
        "A callback's message must be text of 1 to 1000 characters; {when} in it says when the"
        " caller is called back."
    )


def callback_message_placeholder() -> str:
    return (
        "A callback's message may hold one placeholder, {when}, which says when the caller is called"
        " back; write other braces doubled ({{ and }})."
    )


def callback_reason_invalid() -> str:
    return "A callback's reason must be one line of text of at most 200 characters."


def callback_hours_invalid(value: object) -> str:
    return f"A callback's hours must be a BusinessHours, not {type(value).__name__}."


def callback_not_kept(call: str, detail: str) -> str:
    return (
        f"The callback for {call} could not be kept in the store ({detail}). The caller was told they"
        " will be called back: only the callback-requested signal's receivers have the task."
    )


def handoff_not_handoff(value: object) -> str:
    return f"A destination's handoff must be a Handoff, not {type(value).__name__}."


def handoff_control_characters(what: str) -> str:
    return (
        f"The hand-off's {what} holds control characters (line breaks, tabs, NUL). It travels in a"
        " SIP header: write it on one line of printable characters."
    )


def handoff_fields_not_mapping(value: object) -> str:
    return f"A hand-off's fields must be a mapping of names to strings, not {type(value).__name__}."


def handoff_too_many_fields(count: int, limit: int) -> str:
    return (
        f"A hand-off carries at most {limit} fields; this one has {count}. Keep the ones the"
        " person who answers needs, and link to the rest from your CRM."
    )


def handoff_field_name_invalid(name: object) -> str:
    return (
        f"The hand-off field name {name!r} is not valid. It becomes the header X-Handoff-<name>:"
        " start with a letter and use letters, digits and dashes, at most 32 characters."
    )


def handoff_field_name_taken(name: str) -> str:
    return (
        f"The hand-off field name {name!r} is taken: the extension writes X-Handoff-Id, -Caller,"
        " -Url, -Reason, -Account and -Ticket itself, and SIP header names ignore case. Give the"
        " field another name."
    )


def handoff_sensitive_not_names(value: object) -> str:
    return f"A hand-off's sensitive must be a set of names, not {type(value).__name__}."


def handoff_sensitive_unknown(unknown: list[str], known: list[str]) -> str:
    return (
        f"The hand-off marks {', '.join(unknown)} sensitive, which it does not hold. Name one of"
        f" {', '.join(known)}."
    )


def handoff_flag_not_bool() -> str:
    return "A hand-off's include_caller and refer_to must be True or False."


def handoff_headers_too_long(size: int, limit: int) -> str:
    return (
        f"The hand-off's headers would take {size} bytes, over the {limit} its own fields may take"
        " (the id, the caller and the link need the rest). Shorten the reason or the fields, or"
        " mark some sensitive: those are shown on the screen-pop page only."
    )


def attribute_control_characters(what: str, *, whose: str = "destination") -> str:
    return (
        f"The {whose}'s {what} holds control characters (line breaks, tabs, NUL). It travels in a"
        " SIP header: write it on one line of printable characters."
    )


def extension_invalid(extension: object) -> str:
    return f"The extension {_show(extension)} is not valid: use a string of 1 to 10 digits, like '101'."


def mode_unknown(mode: object, modes: list[str]) -> str:
    return f"The transfer mode {_show(mode)} is not one of Vapi's modes. Use one of: {', '.join(modes)}."


def history_unknown(history: object, modes: list[str]) -> str:
    return f"The history mode {_show(history)} is not one of Vapi's. Use one of: {', '.join(modes)}."


# Vapi transfer plans ------------------------------------------------------------------------------


def _either(values: t.Iterable[str]) -> str:
    quoted = [repr(value) for value in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def mode_and_plan() -> str:
    return (
        "Give a destination either mode= or transfer_plan=, not both: mode= is a shorthand for"
        " transfer_plan=TransferPlan(mode). Put the mode in the plan, such as"
        ' transfer_plan=TransferPlan("warm-transfer-say-message", message="...").'
    )


def plan_not_a_plan(what: str, expected: str, value: object, *, whose: str = "destination") -> str:
    return (
        f"The {whose}'s {what} must be a flask_calltransfer.{expected}, not"
        f" {type(value).__name__}. Build one, such as {what}={expected}(...)."
    )


def plan_field_mode(field: str, mode: str, modes: t.Collection[str]) -> str:
    which = "that mode" if len(modes) == 1 else "one of those modes"
    return (
        f"The transfer plan's {field} is not used in mode {mode!r}: Vapi uses it only in mode"
        f" {_either(sorted(modes))}. Switch to {which}, or leave {field} out."
    )


def plan_dial_timeout(mode: str, sip_verb: str | None) -> str:
    return (
        f"The transfer plan's dial_timeout applies only with sip_verb='dial', and this plan (mode"
        f" {mode!r}) has sip_verb={sip_verb!r}. Set sip_verb='dial', or leave dial_timeout out."
    )


def plan_sip_verb_unknown(sip_verb: object, verbs: t.Iterable[str]) -> str:
    return f"The SIP verb {_show(sip_verb)} is not one of Vapi's. Use {_either(sorted(verbs))}."


def plan_seconds(whose: str, field: str, value: object, low: int, high: int) -> str:
    return f"The {whose}'s {field} must be a number of seconds from {low} to {high}, not {_show(value)}."


def plan_flag(whose: str, field: str, value: object) -> str:
    return f"The {whose}'s {field} must be True or False, not {_show(value)}."


def plan_audio_url(field: str, value: object) -> str:
    return (
        f"The transfer plan's {field} must be the http:// or https:// URL of an MP3 or WAV file that"
        f" Vapi can fetch, not {_show(value)}."
    )


def plan_context(value: object) -> str:
    return (
        f"The transfer plan's context_engineering_plan must be 'all', 'none', or the number of most"
        f" recent messages to pass on (1 or more), not {_show(value)}."
    )


def plan_twiml_verb(verb: str, verbs: t.Iterable[str]) -> str:
    return (
        f"The transfer plan's twiml uses <{verb}>, which Vapi does not run on the destination's leg:"
        f" use only {_either(sorted(verbs))}."
    )


def plan_twiml_not_xml(detail: str) -> str:
    return (
        f"The transfer plan's twiml is not well-formed XML ({detail}). Close every tag, and escape"
        " text you put inside a verb (xml.sax.saxutils.escape) so that '<' and '&' stay text."
    )


def plan_summary_messages(value: object) -> str:
    return (
        "The summary plan's messages must be a list of message dicts, such as"
        ' [{"role": "system", "content": "Summarise the call in two sentences."}], not'
        f" {_show(value)}."
    )


def sip_uri_invalid(uri: object) -> str:
    return (
        f"{_show(uri)} is not a valid SIP URI. Write it as 'sip:user@host' or 'sips:user@host',"
        " without spaces or angle brackets."
    )


def sip_headers_not_mapping(headers: object) -> str:
    return f"SIP headers must be a dict of header names to values, not {type(headers).__name__}."


def sip_header_name_invalid(name: object) -> str:
    return (
        f"{_show(name)} is not a valid SIP header name. Use letters, digits and '-', for example"
        " 'X-Account-Id'."
    )


def sip_header_value_invalid(name: str) -> str:
    return (
        f"The value of SIP header {name!r} must be a string without line breaks or other control"
        " characters (a tab is allowed)."
    )


def destination_type_invalid(value: object) -> str:
    return (
        f"A handler returned {type(value).__name__}, which is not a destination. Return a"
        " NumberDestination, SipDestination or AssistantDestination, a number or SIP URI string,"
        " a directory name, or None to let the next handler decide."
    )


def directory_name_unknown(name: str, known: t.Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none yet"
    return (
        f"There is no destination named {name!r} in the directory (known: {names}). Add it with"
        f" transfers.add_destination({name!r}, NumberDestination(...)), or return a number or SIP URI."
    )


def directory_name_invalid(name: object) -> str:
    return f"Destination names must be non-empty strings, not {_show(name)}."


def directory_value_invalid(value: object) -> str:
    return (
        f"add_destination() needs a NumberDestination, SipDestination or AssistantDestination, not"
        f" {type(value).__name__}."
    )


def unsupported_kind(platform: str, kind: str) -> str:
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return (
        f"{platform} cannot transfer to {article} {kind} destination. Return a destination {platform}"
        " supports for this request, or check call.platform in your handler."
    )


def unsupported_attribute(platform: str, attribute: str) -> str:
    return (
        f"{platform} cannot carry the destination's {attribute}. Leave {attribute} out for"
        f" {platform} requests, or check call.platform in your handler."
    )


def voicedock_no_tool_call_list(call_id: object) -> str:
    return (
        f"A VoiceDock tool-calls event for call {call_id} has no tool_call_list (nor the older"
        " toolCallList), so no tool was called. Check the assistant's webhook settings."
    )


def sipgate_caller_id_missing() -> str:
    return (
        "sipgate needs a caller ID number for a transfer, and this event carries neither the"
        " caller's number nor the called number. Give the destination a caller_id, such as"
        ' NumberDestination("+49...", caller_id="+4921112345678").'
    )


# Handlers -----------------------------------------------------------------------------------------


def handler_failed(handler: str, call: str) -> str:
    return f"The transfer handler {handler} raised an exception for {call}; using the failure path."


def error_handler_failed(handler: str, call: str) -> str:
    return f"The on_error handler {handler} raised an exception for {call}; using the fallback."


def destination_failed(handler: str, call: str, detail: str) -> str:
    return f"The destination from {handler} cannot be used for {call}: {detail}"


def fallback_failed(call: str, detail: str) -> str:
    return f"CALLTRANSFER_FALLBACK cannot be used for {call}: {detail} Refusing the transfer."


def no_handlers() -> str:
    return (
        "A transfer request arrived but no handler is registered, so it was refused. Add one:\n\n"
        "    @transfers.on_request\n"
        "    def route(call):\n"
        "        return NumberDestination('+31612345678')\n"
    )


def event_handler_failed(handler: str, event: str) -> str:
    return (
        f"The on_event handler {handler} raised an exception for a {event!r} event; answering with"
        " the platform's no-op reply."
    )


def event_reply_invalid(handler: str, value: object) -> str:
    return (
        f"The on_event handler {handler} returned {type(value).__name__}; return a dict (the reply"
        " body) or None (the platform's no-op). Answering with the no-op."
    )


def predicate_invalid(value: object) -> str:
    return f"when= must be a callable that takes the TransferRequest, not {type(value).__name__}."


def platform_filter_invalid(value: object) -> str:
    return f"platform= must be a platform name or a list of names, not {_show(value)}."


def event_type_invalid(value: object) -> str:
    return (
        "on_event() needs the event type as a non-empty string, such as 'assistant-request',"
        f" not {_show(value)}."
    )


def refuse_reason_invalid() -> str:
    return "refuse() needs a non-empty sentence that tells the caller what happens next."


# Extension and configuration ----------------------------------------------------------------------


def already_registered() -> str:
    return (
        "A 'CallTransfer' instance has already been registered on this Flask app. Import and use"
        " that instance instead of creating a second one."
    )


def not_registered() -> str:
    return (
        "The current Flask app is not registered with this 'CallTransfer' instance. Did you forget"
        " to call 'init_app', or did you create several 'CallTransfer' instances?"
    )


def config_type(key: str, expected: str, value: object) -> str:
    return f"{key} must be {expected}, not {_show(value)}. Fix it in your app's configuration."


def config_url_prefix(key: str, value: object) -> str:
    return f"{key} must be a path starting with '/', such as '/calltransfer', not {_show(value)}."


def config_region(key: str, value: object) -> str:
    return f"{key} must be a two-letter region code such as 'NL' or 'US', not {_show(value)}."


def config_unknown_platform(key: str, name: object, known: t.Iterable[str]) -> str:
    return (
        f"{key} names {_show(name)}, which is not a platform here."
        f" Known platforms: {', '.join(sorted(known))}."
    )


def platform_entry_point_failed(name: str, where: str, exc: BaseException) -> str:
    return (
        f"The platform {name!r} offered by {where} could not be loaded ({type(exc).__name__}: {exc});"
        " it is not available. Fix or uninstall that distribution."
    )


def platform_entry_point_invalid(name: str, where: str) -> str:
    return (
        f"The platform entry point {name!r} of {where} is not a Platform subclass whose name is"
        f" {name!r}; it is not available. Its distribution must point the entry point at the class."
    )


def platform_entry_point_taken(name: str, where: str) -> str:
    return (
        f"{where} offers a platform named {name!r}, which is built in; the built-in one is used. To"
        " use the other, pass it to CallTransfer(platforms=[...]) or rename its entry point."
    )


def config_missing_credentials(platform: str, keys: t.Sequence[str]) -> str:
    return (
        f"The {platform} platform is enabled but has no credentials. Set {' or '.join(keys)}, or"
        " remove it from CALLTRANSFER_PLATFORMS; CALLTRANSFER_PLATFORMS = [] keeps the extension"
        " installed but off. (CALLTRANSFER_VERIFY_REQUESTS = False disables verification, for local"
        " development only.)"
    )


def config_no_platform(keys: t.Sequence[str]) -> str:
    return (
        "No platform is enabled, so Flask-CallTransfer would serve nothing. Set the credentials of"
        f" at least one platform ({', '.join(keys)}), or set CALLTRANSFER_PLATFORMS = [] to keep"
        " the extension installed but off (in tests, or until the credentials are set)."
    )


def switched_off(key: str) -> str:
    return (
        f"Flask-CallTransfer is off: {key} is [], so no webhook route is served. List platforms in"
        f" {key}, or remove the setting and set their credentials, to switch it on."
    )


def config_choice(key: str, value: object, choices: t.Iterable[str]) -> str:
    return f"{key} must be one of {', '.join(sorted(choices))}, not {_show(value)}."


def config_payload_format(key: str, placeholder: str, allowed: t.Iterable[str]) -> str:
    names = ", ".join("{" + p + "}" for p in sorted(allowed))
    return f"{key} uses the placeholder {{{placeholder}}}, which is not supported. Use {names}."


def config_fallback(key: str, detail: str) -> str:
    return f"{key} is not a usable destination: {detail}"


def config_fallback_name(key: str, name: str) -> str:
    return (
        f"{key} names {name!r}, which is not in the directory. Call transfers.add_destination({name!r},"
        " ...) before init_app(), or set it to a number or SIP URI."
    )


def store_url_invalid(key: str, url: object) -> str:
    return (
        f"{key} must be 'memory://', 'sqlite:///relative/path.sqlite3' (in the instance folder),"
        f" 'sqlite:////absolute/path.sqlite3', 'redis://host:6379/0', 'redis+cluster://host:7000',"
        " 'redis+sentinel://host:26379,host:26379/service' or"
        f" 'postgresql://user@host/database', not {_show(_without_password(url))}."
    )


def postgres_tables_missing() -> str:
    return (
        "The PostgreSQL store's tables do not exist yet. Create them once with"
        " 'flask calltransfer create-tables', or add flask_calltransfer.store.postgres.metadata to"
        " your Alembic target_metadata and run a migration."
    )


def postgres_connect_timeout(seconds: float) -> str:
    return (
        f"PostgreSQL did not accept a connection within {seconds:g} s. Check that the server is up"
        " and answering, or raise CALLTRANSFER_STORE_TIMEOUT."
    )


def postgres_sweep_failed(error: str) -> str:
    return (
        f"Deleting expired rows from the PostgreSQL store failed ({error}); the operation before it"
        " succeeded, and a later write tries again. If this repeats, check the tables for locks"
        " held by long transactions."
    )


def store_needs_postgres(key: str) -> str:
    return (
        f"{key} names a PostgreSQL store, but SQLAlchemy or psycopg is not installed:"
        " pip install 'Flask-CallTransfer[postgresql]'."
    )


def store_needs_redis(key: str) -> str:
    return (
        f"{key} names a Redis store, but the redis package is not installed:"
        " pip install 'Flask-CallTransfer[redis]'."
    )


def verification_disabled() -> str:
    return (
        "CALLTRANSFER_VERIFY_REQUESTS is False: webhook requests are NOT verified and anyone who"
        " can reach the URL can route your calls. Use this for local development only."
    )


# Requests -----------------------------------------------------------------------------------------


def body_too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes (CALLTRANSFER_MAX_BODY_BYTES)."


def body_too_many_values(limit: int) -> str:
    return (
        f"The request body holds more than {limit} JSON values (CALLTRANSFER_MAX_JSON_VALUES); a"
        " platform event is far smaller. Raise the setting if your platform really sends this much."
    )


def body_empty() -> str:
    return "The request body is empty. Send the platform's JSON event."


def body_not_json(detail: str) -> str:
    return f"The request body is not valid JSON ({detail}). Send the platform's JSON event."


def body_not_form() -> str:
    return (
        "The request body is not UTF-8 form data. Send the platform's form-encoded webhook "
        "(application/x-www-form-urlencoded)."
    )


def body_not_object() -> str:
    return "The request body must be a JSON object, the platform's event."


def body_too_deep() -> str:
    return "The request body is nested too deeply to be a platform event."


def payload_invalid(platform: str) -> str:
    return f"The {platform} payload has fields of the wrong type; see 'errors' for each field."


def verification_failed() -> str:
    return "The request could not be verified."


def secret_missing(where: str) -> str:
    return f"No credential was sent in {where}."


def secret_mismatch(where: str) -> str:
    return f"The credential in {where} does not match any configured secret."


def signature_missing(header: str) -> str:
    return f"The signature header {header} is missing."


def signature_mismatch(header: str) -> str:
    return f"The signature in {header} does not match the body."


def timestamp_missing(header: str) -> str:
    return f"The timestamp header {header} is missing."


def timestamp_invalid(header: str) -> str:
    return f"The timestamp header {header} is not a number."


def timestamp_stale(header: str, age: float, limit: float) -> str:
    return f"The timestamp in {header} is {age:.0f} s away from now, outside the {limit:.0f} s window."


# Platform APIs ------------------------------------------------------------------------------------


def api_error(method: str, path: str, status: int, reason: str) -> str:
    return f"{method} {path} failed with {status}: {reason[:200]}"


def api_timeout(method: str, path: str, timeout: float) -> str:
    return f"{method} {path} got no answer within {timeout:.1f} s."


def api_unreachable(method: str, path: str, error: str) -> str:
    return f"{method} {path} could not reach the platform ({error})."


def api_deadline(method: str, path: str) -> str:
    return f"{method} {path} was not sent: the deadline had passed."


def api_no_time_to_retry(method: str, path: str, wait: float) -> str:
    return f"{method} {path} is not retried: waiting {wait:.1f} s would pass the deadline."


def api_retrying(method: str, path: str, failure: str, wait: float) -> str:
    return f"Retrying {method} {path} in {wait:.1f} s after: {failure}"


def api_redirect(method: str, path: str, status: int) -> str:
    return (
        f"{method} {path} answered {status}, a redirect, which is never followed: the command was not"
        " carried out. Configure the API's final URL."
    )


def api_too_large(method: str, path: str, cap: int) -> str:
    return (
        f"{method} {path} answered with a body over {cap} bytes, which was not read. Raise"
        " CALLTRANSFER_HTTP_MAX_RESPONSE_BYTES if the API really answers that much."
    )


def api_bad_body(method: str, path: str, status: int) -> str:
    return f"{method} {path} answered {status} with a body that is not JSON."


def tool_call_repeated(platform: str, tool_call_id: str) -> str:
    return f"The {platform} tool call {tool_call_id} arrived again; answering with the first reply."


def tool_call_in_progress() -> str:
    return "This transfer is already being handled. Wait a moment before trying again."


def tool_result_transferring() -> str:
    return "The call is being transferred now."


def delivery_failed_result() -> str:
    return (
        "The transfer could not be started. Apologise to the caller, and offer to take a message"
        " or to help another way."
    )


def delivery_failed(platform: str, call: str, detail: str) -> str:
    return f"The {platform} transfer for {call} could not be delivered: {detail}"


def control_url_missing() -> str:
    return (
        "The tool call has no call.monitor.controlUrl, so the transfer cannot be sent. Check that"
        " the assistant's monitorPlan has controlEnabled set."
    )


def control_url_invalid() -> str:
    return "The tool call's call.monitor.controlUrl is not an http(s) URL, so the transfer was not sent."


def config_tools_need_api_key(tools_key: str, api_key: str) -> str:
    return (
        f"{tools_key} names transfer tools, but {api_key} is not set, so their transfers could not"
        f" be delivered. Set {api_key} to your VoiceDock API key."
    )


def voicedock_client_missing() -> str:
    return (
        "transfers.voicedock needs CALLTRANSFER_VOICEDOCK_API_KEY. Set it to your VoiceDock API key"
        " in the app's configuration."
    )


def tool_destination_skipped(name: str, kind: str) -> str:
    return (
        f"The directory entry {name!r} is a {kind} destination; VoiceDock's transfer tool takes numbers only."
    )


def tool_destination_cannot_carry(name: str, attributes: t.Sequence[str]) -> str:
    return (
        f"The directory entry {name!r} sets {', '.join(attributes)}, which VoiceDock's transfer tool"
        " cannot carry, so the entry is left out of the tool. Add a directory entry without"
        f" {'it' if len(attributes) == 1 else 'them'} for VoiceDock's tool."
    )


def vapi_tool_description() -> str:
    return "Transfer the caller to a person or department, when they ask for one or you cannot help further."


def handler_timeout(handler: str, call: str, timeout: float) -> str:
    return (
        f"The transfer handler {handler} ran past the {timeout:g} s deadline for {call}; using the"
        " failure path. Make it faster, or raise CALLTRANSFER_HANDLER_TIMEOUT if the platform allows."
    )


def event_handler_timeout(handler: str, event: str) -> str:
    return (
        f"The on_event handler {handler} ran past the platform's deadline for a {event!r} event;"
        " answering with the platform's no-op reply. Make it faster or move slow work off the request."
    )


def error_handler_timeout(handler: str, call: str, timeout: float) -> str:
    return f"The on_error handler {handler} ran past its {timeout:.2f} s for {call}; using the fallback."


def vapi_api_client_missing() -> str:
    return (
        "transfers.vapi_api needs CALLTRANSFER_VAPI_API_KEY. Set it to a private Vapi API key in the"
        " app's configuration."
    )


def dashboard_needs_log() -> str:
    return (
        "CALLTRANSFER_DASHBOARD_TOKEN is set, but the dashboard shows the transfer log, which is off."
        " Set CALLTRANSFER_LOG_TRANSFERS = True as well."
    )


def dashboard_sign_in() -> str:
    return (
        "Enter the dashboard token (CALLTRANSFER_DASHBOARD_TOKEN) to see the figures, or send it as"
        " Authorization: Bearer <token>."
    )


def dashboard_token_in_url() -> str:
    return (
        "The token is not accepted in the page's address, where access logs and browser history keep"
        " it: enter it in the form below instead, and remove it from any bookmark."
    )


def dashboard_wrong_token() -> str:
    return "That token is not the dashboard token. Check CALLTRANSFER_DASHBOARD_TOKEN and try again."


def dashboard_store_down() -> str:
    return (
        "The transfer log's store is not answering, so there are no figures to show. Check the store"
        " (CALLTRANSFER_STORE_URL) and reload the page."
    )


def _receiver_name(receiver: object) -> str:
    module = getattr(receiver, "__module__", None)
    name = getattr(receiver, "__qualname__", None) or repr(receiver)
    return f"{module}.{name}" if module else name


def signal_receiver_failed(signal: str, receiver: object) -> str:
    return (
        f"The receiver {_receiver_name(receiver)} of the {signal!r} signal raised an exception; it was"
        " skipped, the other receivers ran and the platform's answer is unchanged. Fix the receiver:"
        " signals observe transfers, and a receiver should catch its own errors."
    )


def signal_receiver_async(signal: str, receiver: object) -> str:
    return (
        f"The receiver {_receiver_name(receiver)} of the {signal!r} signal is a coroutine function,"
        " which blinker cannot call from a webhook. Connect a plain function instead."
    )


def store_failed(store: str, operation: str, exc: BaseException) -> str:
    return (
        f"The store {store} failed on {operation} ({type(exc).__name__}: {str(exc)[:200]}); operations"
        " fail at once for a moment before it is tried again. Check that the store is up, writable"
        " and not locked by another process."
    )


def store_error(store: str, operation: str, exc: BaseException) -> str:
    return (
        f"The store {store} could not do {operation} ({type(exc).__name__}: {str(exc)[:300]}). This is"
        " not an outage, so the store stays in use; the exception says what to fix."
    )


def store_circuit_open(store: str, seconds: float) -> str:
    return (
        f"The store {store} failed moments ago; it is tried again in {seconds:.1f} s. Check that the"
        " store is up, writable and not locked by another process."
    )


def store_recovered(store: str) -> str:
    return f"The store {store} answers again."


def store_bookkeeping_skipped(what: str, detail: str) -> str:
    return f"Skipped {what}, because the store is unavailable; the caller's answer is unchanged. {detail}"


def tool_call_claimed_locally(platform: str, tool_call_id: str, detail: str) -> str:
    return (
        f"The {platform} tool call {tool_call_id} could not be claimed in the store, so it is delivered"
        f" from this worker without the cross-worker exactly-once check. {detail}"
    )


def tool_call_reply_not_kept(platform: str, tool_call_id: str, detail: str) -> str:
    return (
        f"The reply to the {platform} tool call {tool_call_id} could not be kept in the store; a repeat"
        f" delivery to another worker may be answered anew. {detail}"
    )


def pool_turn_local(pool: str, detail: str) -> str:
    return (
        f"The DestinationPool {pool!r} took a turn of this worker's own, because the store is"
        f" unavailable. {detail}"
    )


def pending_not_kept(session_id: str, detail: str) -> str:
    return (
        f"The announced transfer of sipgate session {session_id} could not be kept in the store, so it"
        f" is sent now, without the announcement. {detail}"
    )


def pending_not_read(session_id: str, detail: str) -> str:
    return (
        f"Could not read the pending transfer of sipgate session {session_id} from the store; the event"
        f" is answered as if none were pending. {detail}"
    )


def route_failed(call: str) -> str:
    return (
        f"Routing {call} failed inside Flask-CallTransfer; answering with the refusal. This is a bug or"
        " a failing dependency: the traceback below says which."
    )


def body_too_slow(timeout: float) -> str:
    return (
        f"The request body did not arrive within {timeout:g} s. Send the whole body at once, or raise"
        " CALLTRANSFER_BODY_TIMEOUT if a proxy in front of this server delivers bodies slowly."
    )


def allowlist_entry_invalid(entry: object) -> str:
    return (
        f"{entry!r} is not a host allowlist entry. Use a host name ('calls.example.com'), a pattern"
        " ('*.vapi.ai') or an exact origin ('http://127.0.0.1:8099')."
    )


def control_url_refused(host: str, reason: str) -> str:
    return (
        f"The control URL was not called because {reason} (host {host!r}). If Vapi really sends"
        " control URLs there, add the host name to CALLTRANSFER_VAPI_CONTROL_HOSTS, or, for an IP"
        " address, a port or plain http, the exact origin ('http://127.0.0.1:8099')."
    )


def config_secret_blank(key: str) -> str:
    return f"{key} holds an empty or blank secret, which anyone could send. Set a long random value."


def config_secret_not_latin1(key: str) -> str:
    return (
        f"{key} holds characters outside latin-1, which HTTP headers cannot carry, so no request"
        " could ever match it. Use a random ASCII value (such as secrets.token_urlsafe(32))."
    )


def config_window_unsigned(format_key: str, age_key: str) -> str:
    return (
        f"{format_key} does not sign the timestamp, so the {age_key} window would trust a timestamp"
        " anyone can rewrite. Put {timestamp} in the format (as '{timestamp}.{body}'), or set"
        f" {age_key} = None to say there is no replay window."
    )


def config_window_without_header(header_key: str, age_key: str) -> str:
    return (
        f"{header_key} is empty, which would switch off the {age_key} replay window. Name the"
        f" timestamp header, or set {age_key} = None to say there is no replay window."
    )


def config_hash_without_key(key: str, hash_key: str) -> str:
    return (
        f"{key} = 'hash' needs a secret key, or the hashes can be reversed by trying every number."
        f" Set the app's SECRET_KEY or {hash_key} to a long random value."
    )


def config_token_too_short(key: str, minimum: int) -> str:
    return (
        f"{key} is shorter than {minimum} characters, short enough to guess. Use a long random value,"
        " such as secrets.token_urlsafe(32)."
    )


def api_bad_encoding(method: str, path: str, encoding: str) -> str:
    return (
        f"{method} {path} answered in a content encoding that is not read ({encoding[:50]!r}): the"
        " answer was not used. The platform's API should answer uncompressed, as it was asked to."
    )


def replay_answered(platform: str, call: str) -> str:
    return (
        f"A {platform} request for {call} arrived again with the same bytes; answering with the first"
        " answer, without routing it again."
    )


# Failover and availability ---------------------------------------------------------------------


def chain_empty() -> str:
    return (
        "A DestinationChain needs at least one destination, such as DestinationChain(['sales', 'support'])."
    )


def chain_entry_invalid(entry: object) -> str:
    return (
        f"A DestinationChain takes destination objects, directory names or number and SIP strings,"
        f" not {type(entry).__name__}."
    )


def chain_name_invalid(name: object) -> str:
    return f"A DestinationChain's name must be a non-empty string, such as 'sales-hunt', not {_show(name)}."


def chain_message_invalid() -> str:
    return (
        "A DestinationChain's message must be a sentence of at most 1000 characters, such as"
        " 'They are busy; let me try someone else.'"
    )


def failover_message() -> str:
    return "Sorry, they could not take your call. One moment, please."


def attempts_not_read(platform: str, call_id: str, detail: str) -> str:
    return (
        f"The earlier transfer attempts of {platform} call {call_id!r} could not be read, because the"
        f" store is unavailable; the call is routed as a first attempt. {detail}"
    )


def capacity_not_counted(name: str, detail: str) -> str:
    return (
        f"The concurrent calls of {name!r} could not be counted, because the store is unavailable;"
        f" the call is sent there anyway. {detail}"
    )


def destination_skipped(name: str, reason: str, call: str) -> str:
    why = "it is full (max_concurrent)" if reason == "full" else "its availability check said no"
    return f"Skipped {name} for {call}: {why}."


def availability_check_failed(name: str, call: str) -> str:
    return (
        f"The availability check for {name} raised for {call}; the destination counts as available."
        " Fix the check, or catch what it raises."
    )


def availability_check_timeout(name: str, call: str) -> str:
    return (
        f"The availability check for {name} ran past the handlers' deadline for {call}; the"
        " destination counts as available. Make the check faster, or cache its answer."
    )


def chain_exhausted(call: str) -> str:
    return f"No destination is free for {call}: every one was tried, full or unavailable."


def max_concurrent_invalid(value: object) -> str:
    return f"max_concurrent must be a whole number of calls of at least 1, not {_show(value)}."


def available_invalid(value: object) -> str:
    return (
        "available must be a predicate taking the call and returning True or False (such as a"
        f" BusinessHours), not {type(value).__name__}."
    )


def failover_delivery_failed(platform: str, call_id: str, detail: str) -> str:
    return f"The next destination of {platform} call {call_id!r} could not be sent. {detail}"


def transfer_in_progress() -> str:
    return "A transfer of this call is already under way; wait for it to connect or fail."


def chain_entry_skipped(exc: object, call: str) -> str:
    return f"A DestinationChain entry for {call} is skipped: {exc} Fix the entry in the handler."


def follow_up_failed(platform: str, call_id: str) -> str:
    return (
        f"Following up the transfer outcome of {platform} call {call_id} failed; the event is still"
        " answered. This is a bug: please report it with this traceback."
    )


def chain_too_long(count: int, limit: int) -> str:
    return (
        f"A DestinationChain holds at most {limit} destinations, not {count}: a caller never waits"
        " through more. Use a DestinationPool to spread calls over a larger team."
    )
