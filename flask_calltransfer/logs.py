"""The package's logger, which masks phone numbers in every line it writes."""

from __future__ import annotations

import logging

from . import phone


class MaskNumbers(logging.Filter):
    """Masks phone numbers in a record's message and traceback before any handler sees it.

    Our own messages mask numbers already; this also covers text we do not write, such as the
    message of an exception raised by an app's handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = phone.mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = phone.mask_text(logging.Formatter().formatException(record.exc_info))
        return True


#: The logger every module of the package writes to.
logger = logging.getLogger("flask_calltransfer")
logger.addFilter(MaskNumbers())


class QuietUrls(logging.Filter):
    """Cuts httpx's request log line down to the URL's host and path, numbers masked.

    httpx logs every request at INFO with its full URL; a control URL's query string can carry a
    token, and a path can carry a number.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.args, tuple)
            and len(record.args) >= 2
            and str(record.msg).startswith("HTTP Request")
        ):
            url = record.args[1]
            host = getattr(url, "host", "")
            path = getattr(url, "path", "")
            record.args = (record.args[0], phone.mask_text(f"{host}{path}"), *record.args[2:])
        return True


#: httpx's own logger; the filter is added once, when the package is imported.
logging.getLogger("httpx").addFilter(QuietUrls())
